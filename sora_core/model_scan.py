"""What a weights file is, from its tensor names and shapes; a ComfyUI ``models/`` tree listed.

Light half (standard library): headers only (``model_files.read_header``), so ``sora models`` and
the add-on can say "Wan T2V 1.3B, bf16" or "Wan LoRA rank 32, 400 modules" and which installed
base folder a file pairs with, without torch and without reading a weight.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SoraError
from .model_files import GGUF, PICKLE_SUFFIXES, SAFETENSORS, read_header
from .model_rules import read_json

PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.")
# ComfyUI's models/ folders and what sora reads from each
COMFY_FOLDERS = {"diffusion_models": "transformer", "unet": "transformer", "vae": "vae",
                 "latent_upscale_models": "upsampler",
                 "loras": "lora", "text_encoders": "text_encoder"}
LORA_MARKS = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", "lora_unet_")
LORA_ENDS = (".alpha", ".diff", ".diff_b")
_BLOCK = re.compile(r"(?:^|\.)(blocks|transformer_blocks)\.(\d+)\.")


def _strip(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _size(params: int) -> str:
    return f"{params / 1e9:.1f}B" if params >= 1e9 else f"{params / 1e6:.1f}M" if params >= 1e6 \
        else f"{params / 1e3:.0f}k"


def architecture(shapes: dict[str, tuple[int, ...]]) -> dict:
    """Family, width, depth, input channels and parameter count of a transformer's tensors."""
    norm = {_strip(k): tuple(s) for k, s in shapes.items()}
    params = sum(math.prod(s) for s in norm.values())
    blocks = {int(m.group(2)) for k in norm for m in [_BLOCK.search(k)] if m and not k.startswith("vace_")}
    arch = {"family": "unknown", "hidden": None, "layers": len(blocks), "in_channels": None,
            "params": params}
    embed = norm.get("patch_embedding.weight")
    proj = norm.get("proj_in.weight") or norm.get("patchify_proj.weight")
    if embed is not None and len(embed) >= 2:
        kind = "VACE" if any(k.startswith("vace_") for k in norm) else \
            "I2V" if embed[1] == 36 or any("img_emb" in k or "image_embedder" in k for k in norm) else \
            "TI2V" if embed[1] == 48 else "T2V"
        arch.update(family="wan", kind=kind, hidden=embed[0], in_channels=embed[1])
    elif proj is not None and len(proj) == 2:
        ltx2 = any(k.startswith("audio_") for k in norm)
        arch.update(family="ltx2" if ltx2 else "ltx", kind="", hidden=proj[0], in_channels=proj[1])
    return arch


def describe_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    """'Wan T2V 14.3B: hidden 5120, 40 blocks, 16 in' (or what little can be told)."""
    a = architecture(shapes)
    name = {"wan": "Wan", "ltx": "LTX-Video", "ltx2": "LTX-2"}.get(a["family"], "unknown kind")
    kind = f" {a['kind']}" if a.get("kind") else ""
    detail = f"hidden {a['hidden']}, {a['layers']} blocks, {a['in_channels']} in" if a["hidden"] else \
        f"{len(shapes)} tensors"
    return f"{name}{kind} {_size(a['params'])}: {detail}"


def describe_lora(shapes: dict[str, tuple[int, ...]]) -> dict:
    """Key format, model family, rank and module count of a LoRA file."""
    keys = list(shapes)
    modules = {re.sub(r"\.(lora_down|lora_up|lora_A|lora_B)(\.default)?\.weight$|\.(alpha|diff|diff_b)$",
                      "", k) for k in keys}
    ranks = sorted({s[0] for k, s in shapes.items() if (".lora_down." in k or ".lora_A." in k) and s})
    fmt = ("kohya" if any(k.startswith("lora_unet_") for k in keys) else
           "ComfyUI" if any(".lora_down." in k for k in keys) else
           "Kijai" if any(k.startswith("diffusion_model.") for k in keys) else "diffusers/PEFT")
    text = " ".join(keys[:50])
    family = ("Wan" if "self_attn" in text or re.search(r"blocks[._]\d+[._](attn1|cross_attn)", text)
              and "transformer_blocks" not in text else "LTX" if "transformer_blocks" in text else "unknown")
    rank = ranks[0] if len(ranks) == 1 else (f"{ranks[0]}-{ranks[-1]}" if ranks else "?")
    return {"format": fmt, "family": family, "rank": rank, "modules": len(modules),
            "label": f"{family} LoRA rank {rank}, {len(modules)} modules ({fmt} keys)"}


def dtype_label(dtypes: dict[str, int]) -> str:
    """The file's storage in the words artists use (Q8_0, fp8, bf16 ...): the most common dtype of
    its most compressed kind, since norms and biases stay in float32 in quantized files."""
    if not dtypes:
        return "?"
    rank = lambda d: 0 if d in ("F32", "F64") else 1 if d in ("F16", "BF16") else 2 if d.startswith("F8") else 3  # noqa: E731
    top = max(rank(d) for d in dtypes)
    main = max((d for d in dtypes if rank(d) == top), key=dtypes.get)
    return {"F8_E4M3": "fp8", "F8_E5M2": "fp8 e5m2", "BF16": "bf16", "F16": "fp16",
            "F32": "fp32"}.get(main, main)


@dataclass
class FileInfo:
    """One weights file found in a ComfyUI models tree."""

    path: Path
    role: str                   # transformer | vae | lora | text_encoder
    label: str
    pairs: list[str] = field(default_factory=list)   # base folders the file fits
    problem: str = ""

    def to_dict(self) -> dict:
        return {"path": str(self.path), "role": self.role, "label": self.label,
                "pairs": self.pairs, "problem": self.problem}


def is_comfy_tree(root: Path) -> bool:
    return root.is_dir() and any((root / name).is_dir() for name in COMFY_FOLDERS)


def scan_files(roots, bases=()) -> list[FileInfo]:
    """Every transformer, VAE, LoRA and text-encoder file in the ComfyUI trees among ``roots``;
    ``bases`` (ModelInfo) are checked for the transformers that fit them."""
    found = []
    for root in (Path(r).expanduser() for r in roots):
        if not is_comfy_tree(root):
            continue
        for sub, role in COMFY_FOLDERS.items():
            folder = root / sub
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                suffix = path.suffix.lower()
                if suffix in PICKLE_SUFFIXES:
                    found.append(FileInfo(path, role, "pickle file", problem="refused: sora loads "
                                          "safetensors and GGUF only (convert it to safetensors)"))
                elif suffix in (SAFETENSORS, GGUF):
                    found.append(inspect_file(path, role, bases))
    return found


def inspect_file(path: Path, role: str, bases=()) -> FileInfo:
    try:
        header = read_header(path)
    except SoraError as err:
        return FileInfo(path, role, "unreadable", problem=err.message)
    shapes = header.shapes()
    if role == "lora" or any(m in k for k in list(shapes)[:20] for m in LORA_MARKS) \
            or any(k.endswith(LORA_ENDS) for k in list(shapes)[:20]):
        return FileInfo(path, "lora", describe_lora(shapes)["label"])
    if role == "upsampler":
        return _upsampler_info(path)
    scaled = " scaled" if any(k == "scaled_fp8" or k.endswith(".scale_weight") for k in shapes) else ""
    info = FileInfo(path, role, f"{describe_shapes(shapes)}, {dtype_label(header.dtypes())}{scaled}")
    if role == "transformer":
        arch = architecture(shapes)
        info.pairs = [b.name for b in bases if _fits(arch, Path(b.path))]
    return info


def _upsampler_info(path: Path) -> FileInfo:
    """An LTX-2 latent upscaler file: its scale, or why sora runs it in one stage only."""
    from .upsampler_rules import read_config, spatial_scale

    try:
        scale, why = spatial_scale(read_config(path, "upsampler"))
    except SoraError as err:
        return FileInfo(path, "upsampler", "not a latent upsampler", problem=err.message)
    if why:
        return FileInfo(path, "upsampler", "LTX-2 latent upsampler", problem=why)
    return FileInfo(path, "upsampler", f"LTX-2 latent upsampler, spatial x{scale}")


def _fits(arch: dict, base: Path) -> bool:
    """A transformer's width, depth and input channels match the base's transformer config."""
    if arch["hidden"] is None:
        return False
    for name in ("transformer", "transformer_2"):
        try:
            cfg = read_json(base / name / "config.json")
        except SoraError:
            continue
        hidden = (cfg.get("num_attention_heads") or 0) * (cfg.get("attention_head_dim") or 0)
        if (hidden, cfg.get("num_layers"), cfg.get("in_channels")) == \
                (arch["hidden"], arch["layers"], arch["in_channels"]):
            return True
    return False
