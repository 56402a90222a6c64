"""A JSON Schema (draft 2020-12) of ShotSpec, derived from its dataclasses, for farm tools and
editors (`sora schema`). Standard library only, like the spec itself."""

from __future__ import annotations

import typing
from dataclasses import asdict, fields
from typing import Any

from .model_files import Lora
from .spec import CHOICES, RANGES, Keyframe, PromptChange, ShotSpec


def json_schema() -> dict:
    """A JSON Schema (draft 2020-12) of ShotSpec for farm tools and editors."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ShotSpec",
        "description": "One shot for sora_core: mode, prompt, model, sampling, size, inputs, output.",
        **_schema_of(ShotSpec),
        "required": ["mode"],
    }


def _schema_of(cls, prefix: str = "") -> dict:
    props = {}
    hints = typing.get_type_hints(cls)
    defaults = asdict(cls()) if cls not in (Keyframe, PromptChange, Lora) else {}
    for f in fields(cls):
        path = prefix + f.name
        prop = _schema_type(hints[f.name], path + ".")
        target = prop["anyOf"][0] if "anyOf" in prop else prop
        if path in CHOICES:
            target["enum"] = list(CHOICES[path])
        if path in RANGES:
            kind, low, high = RANGES[path]
            target.update(minimum=low, maximum=high)
        if f.name in defaults and not isinstance(defaults[f.name], (dict, list)):
            prop["default"] = defaults[f.name]
        props[f.name] = prop
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if cls in (Keyframe, PromptChange, Lora):
        schema["required"] = [f.name for f in fields(cls)]
    return schema


def _schema_type(hint: Any, prefix: str) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:
        inner = _schema_type(next(a for a in args if a is not type(None)), prefix)
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is list:
        return {"type": "array", "items": _schema_type(args[0], prefix)}
    if hasattr(hint, "__dataclass_fields__"):
        return _schema_of(hint, prefix)
    return {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]}
