"""The flipbook's side panel: how the shot was made (manifest), what the current frame's header
says, and whether the frames still match their recorded hashes (``sora verify``'s own check,
run off the GUI thread)."""

from __future__ import annotations

import html
import threading
from pathlib import Path

from .compat import QtCore, QtWidgets, Signal


def manifest_rows(manifest: dict) -> list[tuple[str, str]]:
    """The lines a reviewer asks about first: model, prompt, seed, size, timings, status."""
    spec = manifest.get("spec") or {}
    model = manifest.get("model") or {}
    timings = manifest.get("timings") or {}
    name, family = model.get("name", spec.get("model", "?")), model.get("family")
    rows = [("model", name + (f" ({family})" if family and family != name else "")),
            ("model hash", str(model.get("hash", ""))[:16]),
            ("mode", str(spec.get("mode", ""))),
            ("prompt", str(spec.get("prompt", ""))),
            ("negative", str(spec.get("negative_prompt", ""))),
            ("seed", str(manifest.get("seed", spec.get("seed")))),
            ("size", f"{spec.get('width')}×{spec.get('height')} · {spec.get('fps')} fps · {spec.get('steps')} steps"),
            ("frames", f"{manifest.get('first_frame')}–{manifest.get('last_frame')} "
                       f"({len(manifest.get('frames') or [])})"),
            ("status", str(manifest.get("status", ""))),
            ("created", str(manifest.get("created", "")))]
    if timings:
        rows.append(("time", " · ".join(f"{k[:-2]} {timings[k]:.1f} s" for k in
                                        ("total_s", "load_s", "denoise_s", "write_s") if k in timings)))
    for notice in manifest.get("notices") or []:
        rows.append(("notice", str(notice)))
    return [(k, v) for k, v in rows if v not in ("", "None")]


def table_html(title: str, rows) -> str:
    body = "".join(f"<tr><td style='color:#999;padding-right:8px' valign='top'>{html.escape(k)}</td>"
                   f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<b>{html.escape(title)}</b><table>{body}</table>"


class ProvenancePanel(QtWidgets.QWidget):
    verified = Signal(object)           # the provenance Report, or an error string
    _report = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.text = QtWidgets.QTextBrowser()
        self.text.setOpenLinks(False)
        self.verify_button = QtWidgets.QPushButton("Verify frames")
        self.verify_button.clicked.connect(self.verify)
        self.verdict = QtWidgets.QLabel("not verified yet")
        self.verdict.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.verify_button)
        layout.addWidget(self.verdict)
        self.folder: Path | None = None
        self._manifest_html = ""
        self._report.connect(self._show_report, QtCore.Qt.QueuedConnection)

    def set_shot(self, folder: Path | None, manifest: dict | None) -> None:
        self.folder = folder
        self._manifest_html = table_html("Shot", manifest_rows(manifest)) if manifest else \
            "<i>an image sequence without a manifest: no provenance recorded</i>"
        self.verify_button.setEnabled(manifest is not None)
        self.verdict.setText("not verified yet" if manifest else "")
        self.set_header({})

    def set_header(self, attrs: dict) -> None:
        rows = [(k.split(":", 1)[1], v) for k, v in sorted(attrs.items()) if k.startswith("sora:")]
        header = table_html("Frame header", rows) if rows else ""
        self.text.setHtml(self._manifest_html + ("<br>" + header if header else ""))

    def verify(self) -> None:
        """Check every frame against the manifest (and the signatures, if any) in a thread."""
        if self.folder is None:
            return
        self.verify_button.setEnabled(False)
        self.verdict.setText("verifying …")
        folder = self.folder

        def work():
            try:
                from ..provenance.verify import verify
                self._report.emit(verify(folder))
            except Exception as exc:        # shown, not raised: a reviewer's button
                self._report.emit(f"cannot verify: {exc}")

        threading.Thread(target=work, daemon=True, name="sora-verify").start()

    def _show_report(self, report) -> None:
        self.verify_button.setEnabled(True)
        if isinstance(report, str):
            self.verdict.setText(report)
        else:
            frames = next((c for c in report.checks if c["check"] == "frames"), None)
            lines = [f"<b>{report.verdict}</b>"] + [html.escape(p) for p in report.problems[:6]]
            if frames and not report.problems:
                lines.append(html.escape(frames["detail"]))
            colour = {"tampered": "#d9534f", "verified": "#5cb85c"}.get(report.verdict, "#c69026")
            self.verdict.setText(f"<span style='color:{colour}'>" + "<br>".join(lines) + "</span>")
        self.verified.emit(report)
