"""The CLI's model-file flags (``--transformer``, ``--transformer-2``, ``--vae``, ``--upsampler``,
``--lora``) and the file half of ``sora models`` (a ComfyUI ``models/`` tree). Light half."""

from __future__ import annotations

import argparse
import json
import os

from .errors import SoraError
from .model_files import LORA_TARGETS


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model files (over the --model base folder)")
    g.add_argument("--transformer", metavar="FILE", help="the transformer from one .safetensors "
                   "(diffusers, original or ComfyUI keys; fp32/fp16/bf16/fp8) or .gguf file")
    g.add_argument("--transformer-2", metavar="FILE", dest="transformer_2",
                   help="the low-noise expert from one file (two-expert models: Wan 2.2 A14B)")
    g.add_argument("--vae", metavar="FILE", help="the VAE from one .safetensors file")
    g.add_argument("--upsampler", metavar="FILE", help="LTX-2's latent upsampler for two stages, the "
                   "original .safetensors file (e.g. ltx-2-spatial-upscaler-x2-1.0.safetensors)")
    g.add_argument("--lora", action="append", default=[], metavar="FILE[@STRENGTH[@TARGET]]",
                   help="a LoRA (.safetensors) at STRENGTH (default 1.0), on TARGET "
                        f"({', '.join(LORA_TARGETS)}; default all); repeatable")
    g.add_argument("--preset", metavar="NAME", help="a fast preset (steps, guidance) named in the model's "
                   "sora_model.json or a LoRA's NAME.sora.json; --steps/--guidance still win")


def _abs(path: str | None) -> str | None:
    return os.path.abspath(os.path.expanduser(path)) if path else None


def parse_lora(value: str) -> dict:
    """``FILE[@STRENGTH[@TARGET]]`` -> a spec ``loras`` entry (the path made absolute)."""
    parts = value.split("@")
    target = parts.pop() if len(parts) >= 2 and parts[-1] in LORA_TARGETS else "all"
    strength = 1.0
    if len(parts) >= 2:
        try:
            strength = float(parts[-1])
            parts.pop()
        except ValueError:
            if target != "all":
                raise SoraError("invalid_input", f"--lora {value}: {parts[-1]!r} is not a strength") from None
    return {"path": _abs("@".join(parts)), "strength": strength, "target": target}


def spec_part(args) -> dict:
    """The spec keys the flags give (``components`` and ``loras``)."""
    return {"components": {"transformer": _abs(args.transformer), "transformer_2": _abs(args.transformer_2),
                           "vae": _abs(args.vae), "upsampler": _abs(args.upsampler)},
            "loras": [parse_lora(v) for v in args.lora], "preset": args.preset}


def print_files(roots, models, as_json: bool) -> None:
    """The weights files of the ComfyUI trees among ``roots``, with the bases each fits."""
    from .model_scan import scan_files
    from .models_index import model_roots

    files = scan_files(model_roots(roots), models)
    if as_json:
        print(json.dumps([f.to_dict() for f in files], indent=2))
        return
    for f in files:
        pairs = f"  fits: {', '.join(f.pairs)}" if f.pairs else ("  fits: no installed base"
                                                                   if f.role == "transformer" else "")
        print(f"{f.role:13} {f.path.name}: {f.label}{pairs}" + (f"  ({f.problem})" if f.problem else ""))
