"""Model files as artists keep them: one-file component overrides and LoRAs named by a shot.

Light half (standard library; the GGUF header through the ``gguf`` package when it is there). A
shot names a base diffusers folder (configs, tokenizer, text encoder, scheduler) and may replace
its ``transformer``, ``transformer_2`` or ``vae`` with one ``.safetensors`` or ``.gguf`` file, give
an LTX-2 model its latent upsampler as the original single file, and add LoRAs. Here: the spec's
parts, the checks that need no torch (file kinds, existence), and the header readers (tensor
names, shapes and dtypes, no weight bytes read, nothing executed).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import SoraError, invalid

SAFETENSORS, GGUF = ".safetensors", ".gguf"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
OVERRIDABLE = ("transformer", "transformer_2", "vae")    # parts of the base's own pipeline
COMPONENT_FILES = OVERRIDABLE + ("upsampler",)
LORA_TARGETS = ("all", "transformer", "transformer_2")
PICKLE_HINT = ("convert it to .safetensors in a trusted environment (e.g. safetensors.torch.save_file("
               "torch.load(path, weights_only=True), 'out.safetensors')) or get a safetensors/GGUF release")


@dataclass
class Components:
    """One-file replacements for parts of the base model (None keeps the base folder's own)."""

    transformer: str | None = None      # .safetensors (diffusers, original or ComfyUI keys) or .gguf
    transformer_2: str | None = None    # the low-noise expert of two-expert models (Wan 2.2 A14B)
    vae: str | None = None              # .safetensors
    upsampler: str | None = None        # LTX-2's latent upsampler, the original .safetensors file

    def given(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in COMPONENT_FILES if getattr(self, name)}


@dataclass
class Lora:
    """A LoRA file applied at ``strength``; ``target`` picks the expert of a two-expert model."""

    path: str
    strength: float = 1.0
    target: str = "all"                 # all | transformer (high noise) | transformer_2 (low noise)


def check_kind(path: str, field: str, allowed: tuple[str, ...]) -> None:
    """Refuse pickle files (they can run code when loaded) and anything not in ``allowed``."""
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise invalid(field, f"{path} is a pickle file ({suffix}); sora loads safetensors and GGUF "
                      "only, since pickle files can run code when loaded", hint=PICKLE_HINT)
    if suffix not in allowed:
        raise invalid(field, f"{path}: {suffix or 'no suffix'} is not a model file sora loads here; "
                      f"use {' or '.join(allowed)}")


def validate(components: Components, loras: list[Lora]) -> None:
    """The spec-level checks (no disk access): file kinds, strengths, targets."""
    for name, path in components.given().items():
        check_kind(path, f"components.{name}", (SAFETENSORS, GGUF) if name.startswith("transformer")
                   else (SAFETENSORS,))
    for i, lora in enumerate(loras):
        check_kind(lora.path, f"loras[{i}].path", (SAFETENSORS,))
        if isinstance(lora.strength, bool) or not isinstance(lora.strength, (int, float)) \
                or not -10.0 <= lora.strength <= 10.0:
            raise invalid(f"loras[{i}].strength", f"{lora.strength!r} must be a number from -10 to 10")
        if lora.target not in LORA_TARGETS:
            raise invalid(f"loras[{i}].target", f"{lora.target!r} is not allowed; use one of: "
                          f"{', '.join(LORA_TARGETS)}")


def check_present(components: Components, loras: list[Lora]) -> None:
    """Every named file exists (preflight, before any process starts)."""
    named = [(f"components.{n}", p) for n, p in components.given().items()]
    named += [(f"loras[{i}].path", lora.path) for i, lora in enumerate(loras)]
    for field, path in named:
        if not Path(path).expanduser().is_file():
            raise SoraError("not_found", f"{field}: file not found: {path}", field=field)


# -- headers ------------------------------------------------------------------------------------
@dataclass
class Header:
    """What a weights file declares: tensor name -> (dtype, shape), and its metadata."""

    path: Path
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: s for k, (_, s) in self.tensors.items()}

    def dtypes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for dtype, _ in self.tensors.values():
            counts[dtype] = counts.get(dtype, 0) + 1
        return counts


MAX_HEADER = 100_000_000
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
               "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path: str | Path) -> Header:
    """The header of a ``.safetensors`` (its JSON) or ``.gguf`` file (tensor infos, metadata)."""
    path = Path(path)
    check_kind(str(path), "model file", (SAFETENSORS, GGUF))
    if path.suffix.lower() == GGUF:
        return _gguf_header(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            (n,) = struct.unpack("<Q", head) if len(head) == 8 else (0,)
            if not 0 < n <= min(MAX_HEADER, path.stat().st_size - 8):
                raise ValueError("bad header length")
            data = json.loads(fh.read(n))
            if not isinstance(data, dict):
                raise ValueError("the header is not a JSON object")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SoraError("invalid_input", f"{path} is not a safetensors file ({exc})") from None
    meta = data.pop("__metadata__", None)
    tensors = _checked_tensors(path, data, path.stat().st_size - 8 - n)
    return Header(path, tensors, {k: str(v) for k, v in meta.items()} if isinstance(meta, dict) else {})


def check_header(path: str | Path, field: str) -> Header:
    """:func:`read_header` for a file a shot names: its error carries the spec field."""
    try:
        return read_header(path)
    except SoraError as err:
        raise SoraError(err.code, f"{field}: {err.message}", field=field, hint=err.hint) from None


def _checked_tensors(path: Path, data: dict, data_size: int) -> dict:
    """Each tensor's claimed shape and dtype must be exactly the bytes it points at, inside the file
    (a header claiming a huge tensor, or one past the end, is refused before anything is read)."""
    tensors = {}
    for key, v in data.items():
        try:
            dtype, shape, (start, end) = v["dtype"], tuple(int(d) for d in v["shape"]), v["data_offsets"]
            need = DTYPE_BYTES[dtype] * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            raise SoraError("invalid_input", f"{path}: tensor {key!r} has no valid dtype, shape and "
                            "data_offsets; not a safetensors file") from None
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_size
                and end - start == need) or min(shape, default=1) < 0:
            raise SoraError("invalid_input", f"{path}: tensor {key!r} claims shape {list(shape)} {dtype} "
                            f"({need} bytes at {start}-{end}), but the file holds {data_size} bytes of "
                            "data; the file is damaged or not what it says", hint="download the file again")
        tensors[key] = (dtype, shape)
    return tensors


def _gguf_header(path: Path) -> Header:
    """GGUF tensor infos through ``gguf.GGUFReader`` (a memory map; no weight bytes are used)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise SoraError("invalid_input", f"{path}: reading GGUF files needs the gguf package",
                        hint="pip install gguf (part of sora's worker extra)") from None
    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError, struct.error) as exc:
        raise SoraError("invalid_input", f"{path} is not a GGUF file ({exc})") from None
    tensors = {t.name: (t.tensor_type.name, tuple(int(d) for d in reversed(t.shape.tolist())))
               for t in reader.tensors}
    meta = {}
    for key, fld in reader.fields.items():
        if key.startswith("general.") and fld.types and fld.types[0].name == "STRING":
            meta[key] = bytes(fld.parts[fld.data[0]]).decode("utf-8", "replace")
    return Header(path, tensors, meta)


def file_identity(path: str | Path) -> dict:
    """A cheap, stable identity of one weights file: name, size and a hash of its header."""
    path = Path(path).expanduser().resolve()
    h = hashlib.sha256(str(path.stat().st_size).encode())
    if path.suffix.lower() == SAFETENSORS:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            h.update(fh.read(min(n, MAX_HEADER)))
    else:
        with open(path, "rb") as fh:
            h.update(fh.read(1 << 20))
    return {"path": str(path), "hash": h.hexdigest()}
