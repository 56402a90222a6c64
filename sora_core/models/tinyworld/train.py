"""Train the TinyWorld model on clips generated on the fly.

    python -m sora_core.models.tinyworld.train --out .cache/train/tinyworld --minutes 90
    python -m sora_core.models.tinyworld.train --out .cache/train/tinyworld --export sora_core/models/tinyworld/weights

Every batch is a pure function of the step number (seeds fixed), so a resumed run sees the same
data it would have seen. A checkpoint (model, EMA, optimiser, step) is written atomically every
``--save-every`` steps to ``<out>/ckpt.pt`` and training resumes from it. The loss is logged to
stdout every 20 steps. ``--export`` writes the EMA weights as an fp16 pipeline folder.

Objective: flow matching x_t = (1 - t) x0 + t eps with t = sigmoid(N(0.8, 0.8)); the network
predicts x0; the loss is on the derived velocity (x_t - x0_hat) / max(t, 0.05) against eps - x0.
Each clip gets a random known-frame mask (none / first / first k / last k / first+last /
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
from .pipeline import TinyWorldPipeline, build_pipeline, default_scheduler, encode_prompts
from .transformer import encode_frames

MODEL = dict(width=256, depth=6, heads=4, mlp_ratio=4.0, patch_size=(2, 4, 4))
TEXT = dict(dim=256, layers=2, heads=4)


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


def batch(step: int, size: int, seed: int = 0):
    rng = np.random.default_rng([seed, step])
    caps, clips, masks = [], [], []
    for i in range(size):
        s = int(rng.integers(10**9))
        cap, frames, _ = world.sample_clip(s)
        if rng.random() < 0.1:
            cap = ""
        caps.append(cap)
        clips.append(frames)
        masks.append(known_mask(rng))
    return caps, torch.from_numpy(np.stack(clips)), torch.from_numpy(np.stack(masks))


def make_cond(x0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x0 (B,3,T,h,w), mask (B,T) -> (B,4,T,h,w): known latents (zero elsewhere) + mask channel."""
    m = mask[:, None, :, None, None].expand(-1, 1, -1, x0.shape[3], x0.shape[4])
    return torch.cat([x0 * m, m], 1)


def loss_fn(pipe, caps, clips, masks, gen):
    x0 = encode_frames(clips)
    b = x0.shape[0]
    t = torch.sigmoid(torch.randn(b, generator=gen) * 0.8 + 0.8)
    eps = torch.randn(x0.shape, generator=gen)
    tt = t[:, None, None, None, None]
    xt = (1 - tt) * x0 + tt * eps
    cond = make_cond(x0, masks)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        states, mask, pooled = encode_prompts(pipe.tokenizer, pipe.text_encoder, caps)
        pred = pipe.transformer(xt, t, cond, states, mask, pooled).float()
    v_pred = (xt - pred) / tt.clamp(min=0.05)
    v = eps - x0
    return ((v_pred - v) ** 2).mean()


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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default=None, help="write the EMA weights as an fp16 pipeline folder and exit")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(MODEL, TEXT)
    params = list(pipe.transformer.parameters()) + list(pipe.text_encoder.parameters())
    ema = copy.deepcopy(pipe)
    for p in list(ema.transformer.parameters()) + list(ema.text_encoder.parameters()):
        p.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    ck = out / "ckpt.pt"
    if ck.exists():
        state = torch.load(ck, map_location="cpu", weights_only=False)
        pipe.transformer.load_state_dict(state["transformer"])
        pipe.text_encoder.load_state_dict(state["text_encoder"])
        ema.transformer.load_state_dict(state["ema_transformer"])
        ema.text_encoder.load_state_dict(state["ema_text_encoder"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        print(f"resumed from {ck} at step {step}", flush=True)
    if args.export:
        export(ema, args.export)
        print(f"exported EMA weights of step {step} to {args.export}")
        return 0

    nparam = sum(p.numel() for p in params)
    print(f"params {nparam / 1e6:.2f} M; model {json.dumps(MODEL)}; text {json.dumps(TEXT)}", flush=True)

    def save():
        state = dict(transformer=pipe.transformer.state_dict(), text_encoder=pipe.text_encoder.state_dict(),
                     ema_transformer=ema.transformer.state_dict(), ema_text_encoder=ema.text_encoder.state_dict(),
                     opt=opt.state_dict(), step=step, model=MODEL, text=TEXT)
        torch.save(state, out / "ckpt.tmp")
        os.replace(out / "ckpt.tmp", ck)

    t_start = time.time()
    pipe.transformer.train()
    pipe.text_encoder.train()
    run_loss, run_n, t_log = 0.0, 0, time.time()
    while step < args.steps:
        if args.minutes and time.time() - t_start > args.minutes * 60:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        caps, clips, masks = batch(step, args.batch, args.seed)
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        loss = loss_fn(pipe, caps, clips, masks, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for src, dst in ((pipe.transformer, ema.transformer), (pipe.text_encoder, ema.text_encoder)):
                for p, e in zip(src.parameters(), dst.parameters()):
                    e.lerp_(p.detach(), 1 - d)
        run_loss += loss.item()
        run_n += 1
        if step % 20 == 0:
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
