"""A Qt front end for the core: the shot panel, the flipbook and the studio app.

Needs PySide6 (the ``qt`` extra) or a host's PySide2; nothing outside ``sora_core.qt`` imports
Qt, so the light half stays importable without it. The flipbook also reads frames, so it needs
OpenImageIO and OpenColorIO (the ``worker`` extra) in the Python that shows it.
"""

from __future__ import annotations

__all__ = ["Flipbook", "ShotPanel", "ShotQueue", "Studio"]


def __getattr__(name):
    """Import each widget on first use (a host embedding the panel need not load the flipbook)."""
    if name == "ShotPanel":
        from .panel import ShotPanel
        return ShotPanel
    if name == "ShotQueue":
        from .queue import ShotQueue
        return ShotQueue
    if name == "Flipbook":
        from .flipbook import Flipbook
        return Flipbook
    if name == "Studio":
        from .studio import Studio
        return Studio
    raise AttributeError(f"module 'sora_core.qt' has no attribute {name!r}")
