"""Which Python runs the worker: $SORA_WORKER_PYTHON, the preference, the set-up venv (once its
set-up finished, see ``.sora-ready``), else Blender's own Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy

from ..settings import get_prefs, user_dir

READY_MARKER = ".sora-ready"            # in the venv, written when Set Up Worker finished


def venv_dir() -> Path:
    return user_dir() / "worker-venv"


def venv_python(folder: Path | None = None) -> Path:
    folder = folder or venv_dir()
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ready_marker(folder: Path | None = None) -> Path:
    """The file Set Up Worker writes (holding the sora_core version) once every step succeeded."""
    return (folder or venv_dir()) / READY_MARKER


def venv_ready(folder: Path | None = None) -> bool:
    folder = folder or venv_dir()
    return venv_python(folder).exists() and ready_marker(folder).is_file()


def same_path(a, b) -> bool:
    """Same path as written (a venv's python is a link to its base Python: do not resolve it)."""
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def chosen_python(prefs=None) -> str:
    """The Worker Python preference as a path ('' when empty)."""
    prefs = prefs or get_prefs()
    return bpy.path.abspath(prefs.worker_python) if prefs.worker_python else ""


def worker_python(prefs=None) -> str:
    """$SORA_WORKER_PYTHON, then the preference, then the set-up venv, then this Python.

    The set-up venv (also when the preference names its Python) is used only once its set-up
    finished (:data:`READY_MARKER`); a half-made venv would die with "No module named ...".
    """
    if os.environ.get("SORA_WORKER_PYTHON"):
        return os.environ["SORA_WORKER_PYTHON"]
    chosen = chosen_python(prefs)
    ready = venv_ready()
    if chosen and (ready or not same_path(chosen, venv_python())):
        return chosen
    if ready:
        return str(venv_python())
    return sys.executable
