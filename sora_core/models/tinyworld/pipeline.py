"""TinyWorldPipeline: text (+ known frames, or a video to restyle) -> 16 frames at 64x64.

One model serves every mode through the per-frame known mask it was trained with:
no frames known = generate, ``{0: image}`` = animate, the first / last k = extend forward /
backward, first and last (or more keyframes) = interpolate. Restyle re-noises a given video to
``strength`` and denoises it with the prompt. Sampling is Euler over a flow-matching schedule
(``FlowMatchEulerDiscreteScheduler``); the transformer predicts the clean clip and the velocity
``(x_t - x0) / sigma`` is derived from it, with classifier-free guidance on the prediction
while the noise level is above ``guidance_min_sigma``: guiding the last, low-noise steps too
rings at object edges (a cyan fringe around a red ball: 1,500-3,600 fringe pixels a clip with
guidance to the end, 6-20 without it below 0.1), and the layout and colours that guidance is
for are settled by then (restyles still take the new colour; at 0.25 two in ten did not).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput

from . import DEFAULT_GUIDANCE, DEFAULT_STEPS, GUIDANCE_MIN_SIGMA, MAX_FRAMES, NATIVE_SIZE
from .transformer import TinyWorldTextEncoder, TinyWorldTransformer, decode_latents, encode_frames
from .world import VOCAB, unknown_words

MAX_TOKENS = 48
SPECIALS = ["[PAD]", "[UNK]", "[CLS]"]


def build_tokenizer():
    """A word-level tokenizer over the world's vocabulary (lower-cased, punctuation split off)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + list(VOCAB))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", model_max_length=MAX_TOKENS)


def default_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Euler flow matching with shift 3: more of the steps at high noise, where training put its
    noise levels (sigmoid(N(0.8, 0.8))) and where the layout is decided. Measured on the trained
    model (bench/eval_tinyworld.py, 40 clips a set): shift 1 left 10 % of one-object clips on
    black empty and found both of two objects in 82 %; shift 3 gave 100 % and 89 %."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)


@dataclass
class TinyWorldPipelineOutput(BaseOutput):
    frames: np.ndarray


def encode_prompts(tokenizer, text_encoder, prompts: list[str], device=None):
    """Token ids with unknown words masked out, then the encoder's states, mask and pooled vector."""
    enc = tokenizer(prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"].clone()
    mask[ids == tokenizer.unk_token_id] = 0
    if device is not None:
        ids, mask = ids.to(device), mask.to(device)
    states, pooled = text_encoder(ids, mask)
    return states, mask, pooled


def _to_tensor_frames(frames, h: int, w: int) -> torch.Tensor:
    """(T,H,W,3) or (H,W,3) array -> (T,64,64,3) float tensor, resized if needed."""
    a = torch.as_tensor(np.asarray(frames, dtype=np.float32))
    if a.ndim == 3:
        a = a[None]
    a = a[..., :3].clamp(0, 1)
    if a.shape[1:3] != (h, w):
        a = F.interpolate(a.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False,
                          antialias=True).permute(0, 2, 3, 1)
    return a


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether bf16 matmuls are fast on this CPU: AVX-512 (where the model card's ~1.7x over float32
    was measured) or AMX. On an AVX2-only 2-core machine bf16 ran a 1024² matmul at 0.3 GFLOP/s
    against 15 in float32, and a 20-step clip took 108 s against 20-60 s in float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512f" in flags or "amx_bf16" in flags


class TinyWorldPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer"
    cpu_bf16 = None  # bf16 autocast on the CPU: None = where the CPU has bf16 units (cpu_has_bf16)

    def __init__(self, tokenizer, text_encoder: TinyWorldTextEncoder, transformer: TinyWorldTransformer,
                 scheduler: FlowMatchEulerDiscreteScheduler):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                              scheduler=scheduler)

    # Components are classes of this package, which diffusers' generic loader cannot look up by the
    # top-level library name it records, so loading is spelled out here (offline, local folder only).
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, torch_dtype=torch.float32, **kwargs):
        from transformers import PreTrainedTokenizerFast

        root = Path(pretrained_model_name_or_path)
        if not (root / "model_index.json").is_file():
            raise FileNotFoundError(f"{root} holds no model_index.json; not a TinyWorld pipeline folder")
        tok = PreTrainedTokenizerFast.from_pretrained(str(root / "tokenizer"))
        te = TinyWorldTextEncoder.from_pretrained(str(root / "text_encoder"), torch_dtype=torch_dtype)
        tr = TinyWorldTransformer.from_pretrained(str(root / "transformer"), torch_dtype=torch_dtype)
        sch = FlowMatchEulerDiscreteScheduler.from_pretrained(str(root / "scheduler"))
        pipe = cls(tok, te, tr, sch)
        te.eval()
        tr.eval()
        return pipe

    def unknown_words(self, prompt: str) -> list[str]:
        """Words of the prompt the model does not know (its own tokenizer's, so older weights name
        the words added to the world since); they are ignored when generating."""
        return unknown_words(prompt or "", self.tokenizer.get_vocab())

    @torch.no_grad()
    def __call__(self, prompt: str = "", negative_prompt: str = "", num_frames: int = MAX_FRAMES,
                 height: int = NATIVE_SIZE[0], width: int = NATIVE_SIZE[1],
                 num_inference_steps: int = DEFAULT_STEPS, guidance_scale: float = DEFAULT_GUIDANCE,
                 guidance_min_sigma: float = GUIDANCE_MIN_SIGMA,
                 generator: torch.Generator | None = None, known_frames: dict | None = None,
                 video: np.ndarray | None = None, strength: float = 1.0, callback_on_step_end=None,
                 output_type: str = "np", return_dict: bool = True):
        if not 1 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"num_frames must be 1..{MAX_FRAMES}, got {num_frames}")
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        device = self.transformer.device
        dtype = self.transformer.dtype
        H, W = NATIVE_SIZE
        T = MAX_FRAMES
        known_frames = {int(k): v for k, v in (known_frames or {}).items()}
        for k in known_frames:
            if not 0 <= k < num_frames:
                raise ValueError(f"known frame index {k} is outside 0..{num_frames - 1}")
        # Fewer frames than a pass: pad at the end, or at the start when only the tail is given
        # (extend backward), so known frames keep their place relative to the clip's ends.
        offset = 0
        if known_frames and min(known_frames) > 0 and max(known_frames) == num_frames - 1:
            offset = T - num_frames

        # conditioning: known latents + mask
        cond = torch.zeros(1, 4, T, H // 2, W // 2)
        known_px = {}
        for k, img in known_frames.items():
            px = _to_tensor_frames(img, H, W)[0]
            known_px[k] = np.asarray(img, dtype=np.float32)[..., :3]
            cond[0, :3, k + offset] = encode_frames(px[None, None])[0, :, 0]
            cond[0, 3, k + offset] = 1.0
        cond = cond.to(device, dtype)

        # text (+ unconditional for guidance)
        do_cfg = guidance_scale is not None and guidance_scale != 1.0
        prompts = [prompt or ""] + ([negative_prompt or ""] if do_cfg else [])
        states, mask, pooled = encode_prompts(self.tokenizer, self.text_encoder, prompts, device)
        states, pooled = states.to(dtype), pooled.to(dtype)

        # schedule and start
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        sigmas = self.scheduler.sigmas
        noise = torch.randn((1, 3, T, H // 2, W // 2), generator=generator, dtype=torch.float32).to(device, dtype)
        if video is not None:
            v = _to_tensor_frames(video, H, W)
            if v.shape[0] < T:  # pad by repeating the last frame
                v = torch.cat([v, v[-1:].expand(T - v.shape[0], -1, -1, -1)], 0)
            x0v = encode_frames(v[None, :T]).to(device, dtype)
            start = int(np.searchsorted(-sigmas[:-1].cpu().numpy(), -strength - 1e-6))
            start = min(start, len(timesteps) - 1)
            s0 = sigmas[start]
            latents = (1 - s0) * x0v + s0 * noise
            timesteps = timesteps[start:]
            if hasattr(self.scheduler, "set_begin_index"):
                self.scheduler.set_begin_index(start)
        else:
            latents = noise
            if hasattr(self.scheduler, "set_begin_index"):
                self.scheduler.set_begin_index(0)

        # bf16 autocast on a CPU with bf16 units: how the model was trained, ~1.7x faster than float32
        use_bf16 = cpu_has_bf16() if self.cpu_bf16 is None else self.cpu_bf16
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if device.type == "cpu" and use_bf16
                    and dtype == torch.float32 else nullcontext())
        for i, t in enumerate(timesteps):
            sigma = (t / self.scheduler.config.num_train_timesteps).to(dtype)
            guided = do_cfg and float(sigma) >= guidance_min_sigma
            n = 2 if guided else 1
            with autocast:
                x0 = self.transformer(latents.expand(n, -1, -1, -1, -1), sigma.expand(n),
                                      cond.expand(n, -1, -1, -1, -1), states[:n], mask[:n],
                                      pooled[:n]).to(latents.dtype)
            if guided:
                x0 = x0[1:] + guidance_scale * (x0[:1] - x0[1:])
            vel = (latents - x0) / sigma.clamp(min=1e-3)
            latents = self.scheduler.step(vel, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                res = callback_on_step_end(self, i, t, {"latents": latents})
                if isinstance(res, dict) and res.get("latents") is not None:
                    latents = res["latents"]

        frames = decode_latents(latents.float())[0, offset:offset + num_frames]
        frames = frames.cpu().numpy().astype(np.float32)
        if (height, width) != (H, W):
            frames = _to_tensor_frames(frames, height, width).numpy()
        for k, img in known_px.items():  # given frames come back exactly as given
            if img.shape[:2] == frames.shape[1:3]:
                frames[k] = np.clip(img, 0, 1)
        frames = frames[None]
        if output_type == "pt":
            frames = torch.from_numpy(frames)
        if not return_dict:
            return (frames,)
        return TinyWorldPipelineOutput(frames=frames)


def build_pipeline(transformer_kwargs: dict | None = None, text_kwargs: dict | None = None) -> TinyWorldPipeline:
    """A fresh, randomly initialised pipeline (training start, and tiny configs for tests)."""
    tok = build_tokenizer()
    tk = dict(vocab_size=len(SPECIALS) + len(VOCAB))
    tk.update(text_kwargs or {})
    te = TinyWorldTextEncoder(**tk)
    trk = dict(text_dim=te.config.dim)
    trk.update(transformer_kwargs or {})
    tr = TinyWorldTransformer(**trk)
    return TinyWorldPipeline(tok, te, tr, default_scheduler())
