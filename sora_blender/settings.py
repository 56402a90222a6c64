"""The add-on's preferences as the rest of the add-on reads them, and the folders they name."""

from __future__ import annotations

from pathlib import Path

import bpy

ADDON_ID = __package__


class _DefaultPrefs:
    """Preference values when the add-on is registered without its preferences (scripts)."""

    worker_python = ""
    model_folders = ()
    device = "auto"
    dtype = "auto"
    memory = "none"
    output_dir = ""
    pip_args = ""
    sign_cert = ""
    sign_key = ""
    trust_anchors = ""


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID) if context.preferences else None
    return addon.preferences if addon and addon.preferences else _DefaultPrefs()


def user_dir() -> Path:
    """The extension's user folder (survives upgrades); a Blender user folder for legacy installs."""
    try:
        path = bpy.utils.extension_path_user(ADDON_ID, create=True)
    except (ValueError, RuntimeError, AttributeError):
        path = bpy.utils.user_resource("DATAFILES", path="sora_blender", create=True)
    return Path(path)


def model_roots(prefs=None) -> list[str]:
    prefs = prefs or get_prefs()
    return [bpy.path.abspath(f.path) for f in prefs.model_folders if f.path]


def output_root(prefs=None) -> Path:
    """Preference folder, else //sora next to the .blend, else the extension's user folder."""
    prefs = prefs or get_prefs()
    if prefs.output_dir:
        return Path(bpy.path.abspath(prefs.output_dir))
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//sora"))
    return user_dir() / "sora"


def sign_env(prefs=None) -> dict[str, str]:
    """The signing identity and trust anchors of the preferences as the worker's environment:
    paths only (the key is read by the process that signs, never by Blender). Empty fields leave
    the environment and the studio config file (docs/provenance.md) to decide."""
    prefs = prefs or get_prefs()
    out = {}
    for attr, var in (("sign_cert", "SORA_SIGN_CERT"), ("sign_key", "SORA_SIGN_KEY"),
                      ("trust_anchors", "SORA_TRUST_ANCHORS")):
        value = getattr(prefs, attr, "")
        if value:
            out[var] = str(Path(bpy.path.abspath(value)))
    return out
