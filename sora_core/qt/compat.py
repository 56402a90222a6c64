"""The Qt binding: PySide6, or PySide2 inside hosts that still embed Qt 5.

Nuke 15+, Houdini 20+ and Maya 2025+ embed PySide6; Nuke 13-14, Houdini 19.5 and Maya 2022-2024
embed PySide2. Everything in ``sora_core.qt`` imports Qt from here, and uses only API both
bindings share (plus the few names mapped below), so the same widgets run in either.
Only PySide6 is tested (PySide2 has no wheel for Python 3.11).
"""

from __future__ import annotations

try:
    from PySide6 import QtCore, QtGui, QtWidgets
    from PySide6.QtGui import QAction
    BINDING = "PySide6"
except ImportError:                      # a Qt 5 host
    try:
        from PySide2 import QtCore, QtGui, QtWidgets
        from PySide2.QtWidgets import QAction
        BINDING = "PySide2"
    except ImportError as exc:
        from ..errors import SoraError

        raise SoraError("not_found", f"sora_core.qt needs PySide6 (or a host's PySide2): {exc}",
                        hint="pip install 'sora-core[qt]'") from None

Signal = QtCore.Signal
Qt = QtCore.Qt


def exec_(obj) -> int:
    """``exec()`` (Qt 6) or ``exec_()`` (PySide2) of an application, dialog or menu."""
    run = getattr(obj, "exec", None) or obj.exec_
    return run()


__all__ = ["BINDING", "QAction", "QtCore", "QtGui", "QtWidgets", "Qt", "Signal", "exec_"]
