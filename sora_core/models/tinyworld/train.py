"""Train the TinyWorld model on clips generated on the fly.

    python -m sora_core.models.tinyworld.train --out .cache/train/tinyworld --minutes 90
    python -m sora_core.models.tinyworld.train --device cuda --workers 14 --batch 64 --minutes 8
    python -m sora_core.models.tinyworld.train --out /tmp/tw-ft --init sora_core/models/tinyworld/weights --lr 1.5e-4
    python -m sora_core.models.tinyworld.train --out .cache/train/tinyworld --export sora_core/models/tinyworld/weights

Every batch is a pure function of the step number (seeds fixed), so a resumed run sees the same
data it would have seen; ``--workers`` renders batches in that many processes (the world is
numpy on the CPU, so on a GPU the renderer, not the model, sets the pace). A checkpoint (model,
EMA, optimiser, step) is written atomically every ``--save-every`` steps to ``<out>/ckpt.pt``
and training resumes from it. The loss is logged to stdout every 20 steps. The learning rate
warms up, then follows a cosine to a tenth over ``--steps`` or ``--minutes``, whichever ends
first. ``--export`` writes the EMA weights as an fp16 pipeline folder. ``--init`` fine-tunes a
weights folder (an older, smaller vocabulary grows; see :func:`init_from`).

Data: the world's training mix (``sampling.TRAIN_WORLD``: up to three objects, entering and
leaving, crossing paths, zoom) and, ``--continuation`` of the time, continuation clips
(``continuation.py``: the later part of a longer trajectory with its first k frames known).

Objective: flow matching x_t = (1 - t) x0 + t eps with t = sigmoid(N(0.8, 0.8)); the network
predicts x0; the loss is on the derived velocity (x_t - x0_hat) / max(t, 0.05) against eps - x0.
Each world clip gets a random known-frame mask (none / first / first k / last k / first+last /
random keyframes) whose frames are fed, clean, through the conditioning channels, and the
caption is dropped 10 % of the time for classifier-free guidance.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import world
from .continuation import continuation_clip
from .pipeline import TinyWorldPipeline, build_pipeline, encode_prompts
from .sampling import TRAIN_WORLD
from .transformer import encode_frames

MODEL = dict(width=256, depth=6, heads=4, mlp_ratio=4.0, patch_size=(2, 4, 4))
TEXT = dict(dim=256, layers=2, heads=4)
CONTINUATION = 0.3          # share of continuation clips in a batch
# A word the first model did not know starts from the embedding of one it did.
NEW_WORD_FROM = {"entering": "moving", "leaving": "moving", "from": "on", "to": "on", "top": "up",
                 "bottom": "down", "zooming": "panning", "in": "on", "out": "on"}


def known_mask(rng: np.random.Generator, T: int = world.FRAMES) -> np.ndarray:
    m = np.zeros(T, np.float32)
    r = rng.random()
    if r < 0.35:
        pass                                   # generate
    elif r < 0.50:
        m[0] = 1                               # animate
    elif r < 0.65:
        m[: rng.integers(2, 9)] = 1            # extend forward
    elif r < 0.78:
        m[T - rng.integers(1, 9):] = 1         # extend backward
    elif r < 0.90:
        m[0] = m[-1] = 1                       # interpolate
    else:
        k = rng.choice(T, size=rng.integers(2, 5), replace=False)
        m[k] = 1                               # keyframes
    return m


def batch(step: int, size: int, seed: int = 0, continuation: float = CONTINUATION):
    """Captions, clean latents (B,3,T,32,32) and known masks (B,T) of one training step: clips of
    the world's training mix, and a share of continuation clips with their leading frames known."""
    rng = np.random.default_rng([seed, step])
    caps, clips, masks = [], [], []
    for i in range(size):
        s = int(rng.integers(10**9))
        if continuation and rng.random() < continuation:
            cap, frames, _, k = continuation_clip(s)
            m = np.zeros(world.FRAMES, np.float32)
            m[:k] = 1
        else:
            cap, frames, _ = world.sample_clip(s, **TRAIN_WORLD)
            m = known_mask(rng)
        if rng.random() < 0.1:
            cap = ""
        caps.append(cap)
        clips.append(frames)
        masks.append(m)
    return caps, encode_frames(torch.from_numpy(np.stack(clips))), torch.from_numpy(np.stack(masks))


class Batches(torch.utils.data.Dataset):
    """Step number -> that step's batch, so DataLoader processes render ahead in order."""

    def __init__(self, first: int, last: int, size: int, seed: int, continuation: float):
        self.first, self.last, self.size, self.seed, self.continuation = first, last, size, seed, continuation

    def __len__(self):
        return max(0, self.last - self.first)

    def __getitem__(self, i):
        torch.set_num_threads(1)
        return batch(self.first + i, self.size, self.seed, self.continuation)


def batches(first: int, last: int, size: int, seed: int, workers: int, pin: bool, continuation: float):
    if workers <= 0:
        return (batch(s, size, seed, continuation) for s in range(first, last))
    return iter(torch.utils.data.DataLoader(Batches(first, last, size, seed, continuation), batch_size=None, shuffle=False,
                                            num_workers=workers, prefetch_factor=4, pin_memory=pin,
                                            persistent_workers=False))


def make_cond(x0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x0 (B,3,T,h,w), mask (B,T) -> (B,4,T,h,w): known latents (zero elsewhere) + mask channel."""
    m = mask[:, None, :, None, None].expand(-1, 1, -1, x0.shape[3], x0.shape[4])
    return torch.cat([x0 * m, m], 1)


def loss_fn(pipe, caps, x0, masks, gen, bf16: bool | None = None):
    """Flow-matching loss of one batch; bf16 autocast on CUDA (on a CPU without bf16 units, such
    as the 2-core machines without AVX-512, bf16 matmuls run ~50x slower than float32)."""
    device = x0.device
    bf16 = device.type == "cuda" if bf16 is None else bf16
    b = x0.shape[0]
    t = torch.sigmoid(torch.randn(b, generator=gen, device=device) * 0.8 + 0.8)
    eps = torch.randn(x0.shape, generator=gen, device=device)
    tt = t[:, None, None, None, None]
    xt = (1 - tt) * x0 + tt * eps
    cond = make_cond(x0, masks)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        states, mask, pooled = encode_prompts(pipe.tokenizer, pipe.text_encoder, caps, device)
        pred = pipe.transformer(xt, t, cond, states, mask, pooled).float()
    v_pred = (xt - pred) / tt.clamp(min=0.05)
    v = eps - x0
    return ((v_pred - v) ** 2).mean()


def init_from(pipe: TinyWorldPipeline, folder: str | Path) -> list[str]:
    """Start from a shipped weights folder (fine-tuning). Its vocabulary may be older and smaller:
    known words keep their embeddings, words added since start from :data:`NEW_WORD_FROM`'s.
    Returns the words added."""
    from .pipeline import SPECIALS, TinyWorldPipeline as P
    old = P.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.transformer.load_state_dict(old.transformer.state_dict())
    te = old.text_encoder.state_dict()
    old_vocab = old.tokenizer.get_vocab()
    new_vocab = pipe.tokenizer.get_vocab()
    emb = pipe.text_encoder.tok.weight.detach().clone()
    added = []
    for w, i in new_vocab.items():
        src = w if w in old_vocab else NEW_WORD_FROM.get(w)
        if src in old_vocab:
            emb[i] = te["tok.weight"][old_vocab[src]]
        if w not in old_vocab and w not in SPECIALS:
            added.append(w)
    te["tok.weight"] = emb
    pipe.text_encoder.load_state_dict(te)
    return added


def export(pipe: TinyWorldPipeline, folder: str | Path) -> None:
    out = copy.deepcopy(pipe)
    out.transformer.to(torch.float16)
    out.text_encoder.to(torch.float16)
    out.save_pretrained(str(folder), safe_serialization=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".cache/train/tinyworld")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--minutes", type=float, default=0, help="stop after this wall time (0 = no limit)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast (default: on CUDA only)")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    ap.add_argument("--workers", type=int, default=0, help="processes that render batches (0: in this one)")
    ap.add_argument("--echo", type=int, default=1,
                    help="optimiser steps per rendered batch, each with fresh noise (data echoing, when "
                         "rendering is slower than the model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="fine-tune: start from this weights folder (no checkpoint yet)")
    ap.add_argument("--continuation", type=float, default=CONTINUATION,
                    help="share of continuation clips (0: the world's training mix only)")
    ap.add_argument("--export", default=None, help="write the EMA weights as an fp16 pipeline folder and exit")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(MODEL, TEXT)
    ck = out / "ckpt.pt"
    if args.init and not ck.exists():
        added = init_from(pipe, args.init)
        print(f"initialised from {args.init}; new words {added}", flush=True)
    pipe.transformer.to(device)
    pipe.text_encoder.to(device)
    params = list(pipe.transformer.parameters()) + list(pipe.text_encoder.parameters())
    ema = copy.deepcopy(pipe)
    for p in list(ema.transformer.parameters()) + list(ema.text_encoder.parameters()):
        p.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0,
                            fused=device.type == "cuda")
    step = 0
    if ck.exists():
        state = torch.load(ck, map_location=device, weights_only=False)
        pipe.transformer.load_state_dict(state["transformer"])
        pipe.text_encoder.load_state_dict(state["text_encoder"])
        ema.transformer.load_state_dict(state["ema_transformer"])
        ema.text_encoder.load_state_dict(state["ema_text_encoder"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        print(f"resumed from {ck} at step {step}", flush=True)
    if args.export:
        ema.transformer.to("cpu")
        ema.text_encoder.to("cpu")
        export(ema, args.export)
        print(f"exported EMA weights of step {step} to {args.export}")
        return 0

    nparam = sum(p.numel() for p in params)
    print(f"params {nparam / 1e6:.2f} M; model {json.dumps(MODEL)}; text {json.dumps(TEXT)}; device "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; batch {args.batch} "
          f"echo {max(1, args.echo)}; workers {args.workers}", flush=True)

    def save():
        state = dict(transformer=pipe.transformer.state_dict(), text_encoder=pipe.text_encoder.state_dict(),
                     ema_transformer=ema.transformer.state_dict(), ema_text_encoder=ema.text_encoder.state_dict(),
                     opt=opt.state_dict(), step=step, model=MODEL, text=TEXT)
        torch.save(state, out / "ckpt.tmp")
        os.replace(out / "ckpt.tmp", ck)

    def learning_rate() -> float:
        done = step / args.steps
        if args.minutes:
            done = max(done, (time.time() - t_start) / (args.minutes * 60))
        decay = 0.1 + 0.45 * (1 + math.cos(math.pi * min(done, 1.0)))
        return args.lr * min(1.0, (step + 1) / args.warmup) * decay

    t_start = time.time()
    pipe.transformer.train()
    pipe.text_encoder.train()
    run_loss, run_n, t_log = 0.0, 0, time.time()
    gen = torch.Generator(device)
    echo = max(1, args.echo)
    data = batches(step // echo, -(-args.steps // echo), args.batch, args.seed, args.workers, device.type == "cuda",
                   args.continuation)
    for caps, x0, masks in (item for item in data for _ in range(echo)):
        if step >= args.steps or (args.minutes and time.time() - t_start > args.minutes * 60):
            break
        lr = learning_rate()
        for g in opt.param_groups:
            g["lr"] = lr
        gen.manual_seed(args.seed * 1_000_003 + step)
        loss = loss_fn(pipe, caps, x0.to(device, non_blocking=True), masks.to(device, non_blocking=True), gen,
                       args.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for src, dst in ((pipe.transformer, ema.transformer), (pipe.text_encoder, ema.text_encoder)):
                torch._foreach_lerp_(list(dst.parameters()), [p.detach() for p in src.parameters()], 1 - d)
        run_loss += loss.detach()
        run_n += 1
        if step % 20 == 0:
            run_loss = run_loss.item()
            print(f"step {step} loss {run_loss / run_n:.4f} lr {lr:.2e} {(time.time() - t_log) / run_n:.2f}s/step "
                  f"elapsed {(time.time() - t_start) / 60:.1f}min", flush=True)
            run_loss, run_n, t_log = 0.0, 0, time.time()
        if step % args.save_every == 0:
            save()
    save()
    print(f"stopped at step {step}", flush=True)
    return 0


def load_checkpoint(path: str | Path, use_ema: bool = True) -> TinyWorldPipeline:
    """A float32 pipeline from a training checkpoint (for probes during training)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    pipe = build_pipeline(state.get("model", MODEL), state.get("text", TEXT))
    pre = "ema_" if use_ema else ""
    pipe.transformer.load_state_dict(state[pre + "transformer"])
    pipe.text_encoder.load_state_dict(state[pre + "text_encoder"])
    pipe.transformer.eval()
    pipe.text_encoder.eval()
    pipe.step = state["step"]
    return pipe


if __name__ == "__main__":
    sys.exit(main())
