"""Provenance in Blender: the Provenance sub-panel shows a signed shot's verification (valid,
untrusted or trusted, tampered naming the frame), Export Deliverable writes a file `sora verify`
accepts without blocking (progress, cancel leaves nothing), the headless entry exports after
generating, and no key reaches the .blend, the manifest or the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender.test_footage import _png_frames
from tests.blender.test_nodes import HEADLESS
from tests.blender.test_panels import _draws_touching_disk, draw, labels
from tests.provenance.conftest import make_chain, sora

PANEL = "SORA_PT_compositor_provenance"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return make_chain(tmp_path_factory.mktemp("blender_chain"))


@pytest.fixture
def signing(scene, chain):
    """The preferences name the test chain (paths only); unset afterwards."""
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.sign_cert, prefs.sign_key = str(chain["chain"]), str(chain["key"])
    yield prefs
    prefs.sign_cert = prefs.sign_key = prefs.trust_anchors = ""


def _signed_footage(tmp_path, count=3, size=(32, 24)) -> Path:
    pattern = _png_frames(tmp_path / "elsewhere", count) if size == (32, 24) else _big_pngs(tmp_path, count, size)
    assert bpy.ops.sora.import_footage(filepath=pattern, name="plate") == {"FINISHED"}
    folder = Path(bpy.context.scene.sora.last_dir)
    assert (folder / "manifest.c2pa").is_file() and (folder / "manifest.jws").is_file()
    return folder


def _big_pngs(tmp_path, count, size) -> str:
    import OpenImageIO as oiio
    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for n in range(1, count + 1):
        out = oiio.ImageOutput.create("png")
        out.open(str(folder / f"plate.{n:04d}.png"), oiio.ImageSpec(size[0], size[1], 3, "uint8"))
        out.write_image(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        out.close()
    return str(folder / "plate.####.png")


def _tamper(frame: Path) -> None:
    """One pixel of one frame changed (the file stays an EXR with its header)."""
    import OpenImageIO as oiio
    buf = oiio.ImageBuf(str(frame))
    pixels = buf.get_pixels(oiio.FLOAT)
    pixels[3, 4, 0] += 0.25
    buf.set_pixels(oiio.ROI(), pixels)
    assert buf.write(str(frame))


def test_the_sub_panel_shows_valid_untrusted_trusted_then_the_tampered_frame(signing, chain, sora_addon,
                                                                             tmp_path):
    live = sora_addon.live
    folder = _signed_footage(tmp_path)
    shown = labels(draw(getattr(bpy.types, PANEL)))
    assert "Not verified yet" in shown and f"plate/{folder.name}" in shown
    assert live.verification(str(folder), create=False) is None      # draw started nothing

    assert bpy.ops.sora.verify_shot() == {"FINISHED"}
    state = live.verification(str(folder))
    assert (state.verdict, state.signer, state.trusted) == ("verified", "Test Studio Signer", False), state
    shown = labels(draw(getattr(bpy.types, PANEL)))
    assert "Verified: signature valid, frames match" in shown
    assert "Signer: Test Studio Signer (Test Studio)" in shown
    assert any(line.startswith("untrusted") for line in shown), shown

    tree = bpy.data.node_groups.new("ProvDraw", "SoraShotTree")       # the node editor's sub-panel:
    node = tree.nodes.new("SoraGenerateNode")                         # the active node's result
    node.result_dir = str(folder)
    tree.nodes.active = node

    class Context:
        space_data = type("Space", (), {"tree_type": "SoraShotTree", "edit_tree": tree})()
        scene = bpy.context.scene

    shown = labels(draw(bpy.types.SORA_PT_shot_nodes_provenance, Context()))
    bpy.data.node_groups.remove(tree)
    assert "Verified: signature valid, frames match" in shown and f"plate/{folder.name}" in shown

    signing.trust_anchors = str(chain["root"])
    bpy.ops.sora.verify_shot()
    assert live.verification(str(folder)).trusted
    assert not any(line.startswith("untrusted") for line in labels(draw(getattr(bpy.types, PANEL))))

    _tamper(folder / "plate.0002.exr")
    bpy.ops.sora.verify_shot()
    state = live.verification(str(folder))
    assert state.verdict == "tampered" and any("plate.0002.exr" in p for p in state.problems), state.problems
    shown = " | ".join(labels(draw(getattr(bpy.types, PANEL))))
    assert "Tampered:" in shown and "plate.0002.exr" in shown, shown
    assert "plate.0001.exr" not in shown
    ms, io = _draws_touching_disk(lambda: draw(getattr(bpy.types, PANEL)))
    print(f"provenance sub-panel draw: {ms:.2f} ms")
    assert not io and ms < 5, (ms, io)                         # draw only draws


def test_export_deliverable_is_signed_and_no_key_is_written_anywhere(signing, chain, sora_addon, scene, tmp_path):
    folder = _signed_footage(tmp_path)
    assert bpy.ops.sora.export_deliverable(format="mp4") == {"FINISHED"}
    state = sora_addon.live.export_job(scene.session_uid)
    assert state.state == "DONE" and state.overall == 1.0, state
    out = Path(bpy.context.preferences.addons["sora_blender"].preferences.output_dir) / "deliverables" \
        / f"plate_{folder.name}.mp4"
    assert state.files == [str(out)] and "signed by Test Studio Signer" in state.message
    run = sora("verify", out, "--json", "--shot", folder, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["verdict"] == "verified" and report["signer"]["common_name"] == "Test Studio Signer"
    shown = labels(draw(getattr(bpy.types, PANEL)))
    assert any(line.startswith("3 frame(s) ->") for line in shown), shown

    still = tmp_path / "still.png"
    assert bpy.ops.sora.export_deliverable(format="png", one_frame=True, frame=2, filepath=str(still)) == {"FINISHED"}
    assert sora("verify", still, cwd=tmp_path).returncode == 0

    blend = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    written = [blend, out, still, *folder.iterdir()]
    for path in written:
        data = path.read_bytes()
        for secret in chain["secrets"]:
            assert secret not in data, f"key material in {path}"
        assert str(chain["key"]).encode() not in data, f"the key's path in {path}"


def test_export_runs_beside_blender_reports_progress_and_cancels_cleanly(signing, sora_addon, scene, tmp_path):
    prov, live = sora_addon.provenance, sora_addon.live
    folder = _signed_footage(tmp_path, count=48, size=(256, 256))
    out = tmp_path / "deliverables" / "plate_png"
    t0 = time.monotonic()
    prov.start_export(scene, str(folder), "png", str(out))
    assert time.monotonic() - t0 < 1.0                       # returns at once: the worker's Python works
    state = live.export_job(scene.session_uid)
    deadline = time.monotonic() + 120
    while state.step < 2:                                    # the timer's work, pumped by hand
        prov.poll()
        assert state.state == "RUNNING", state.error
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)
    assert state.total == 48 and state.message.startswith("export ")
    assert any(e[0] == "progress" for e in draw(getattr(bpy.types, PANEL)))
    assert bpy.ops.sora.cancel_export() == {"FINISHED"}
    prov.wait_all(60)
    assert state.state == "CANCELLED" and not prov.exporting(scene)
    assert not out.exists() and os.listdir(out.parent) == [], os.listdir(out.parent)   # no temporaries


def _graph():
    tree = bpy.data.node_groups.new("ProvShots", "SoraShotTree")
    tree.use_fake_user = True
    gen = tree.nodes.new("SoraGenerateNode")
    gen.name, gen.steps, gen.seed, gen.model, gen.prompt = "Generate", 2, 1, "tinyworld", "a red ball"
    return tree


def test_headless_exports_after_generating_and_refuses_a_tampered_shot(scene, chain, sora_addon, tmp_path):
    tree = _graph()
    for other in [g for g in bpy.data.node_groups if g.bl_idname == "SoraShotTree" and g != tree]:
        bpy.data.node_groups.remove(other)          # earlier tests' graphs: their shots are unsigned
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.output_dir = ""
    blend = tmp_path / "farm.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    bpy.data.node_groups.remove(tree)
    env = {**os.environ, "SORA_WORKER_PYTHON": sys.executable, "SORA_SIGN_CERT": str(chain["chain"]),
           "SORA_SIGN_KEY": str(chain["key"])}
    cmd = [sys.executable, str(HEADLESS), str(blend), "--save", "--export", "mp4", "--export-dir"]
    run = subprocess.run([*cmd, str(tmp_path / "out")], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    mp4 = tmp_path / "out" / "ProvShots_Generate_v001.mp4"
    assert f"sora: [Generate] exported 16 frame(s) -> {mp4}, signed by Test Studio Signer" in run.stdout
    assert sora("verify", mp4, cwd=tmp_path).returncode == 0
    for secret in chain["secrets"]:
        assert secret.decode("latin-1") not in run.stdout + run.stderr

    shot = blend.parent / "sora" / "ProvShots_Generate" / "v001"
    _tamper(shot / "ProvShots_Generate.0005.exr")               # still cached, but no longer what was signed
    again = subprocess.run([*cmd, str(tmp_path / "again")], capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 65, again.stdout[-2000:] + again.stderr[-2000:]
    assert "cached, not run again" in again.stdout and "ProvShots_Generate.0005.exr" in again.stderr
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").iterdir())


def test_generate_signs_with_the_preferences_identity(chain, scene, sora_addon):
    """A warm worker started without the identity is replaced for the next shot, which is not
    aborted by the replacement (it was, when a changed identity stopped the worker's tasks)."""
    scene.sora.model, scene.sora.prompt, scene.sora.steps, scene.sora.frames = "tinyworld", "a red ball", 2, 5
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.sign_cert = prefs.sign_key = ""
    assert bpy.ops.sora.generate() == {"FINISHED"}                 # a warm worker with no identity
    assert not (Path(scene.sora.last_dir) / "manifest.c2pa").exists()
    prefs.sign_cert, prefs.sign_key = str(chain["chain"]), str(chain["key"])
    try:
        assert bpy.ops.sora.generate() == {"FINISHED"}
    finally:
        prefs.sign_cert = prefs.sign_key = ""
    assert sora_addon.live.job(scene).state == "DONE", sora_addon.live.job(scene).error
    folder = Path(scene.sora.last_dir)
    assert (folder / "manifest.c2pa").is_file()                   # the worker had the identity (paths)
    assert sora_addon.worker.service._client.env["SORA_SIGN_KEY"] == str(chain["key"])
    bpy.ops.sora.verify_shot()
    state = sora_addon.live.verification(str(folder))
    assert (state.verdict, state.signer) == ("verified", "Test Studio Signer"), state


def test_the_studio_policy_refuses_in_blender_naming_the_rule(signing, scene, sora_addon, tmp_path, monkeypatch):
    folder = _signed_footage(tmp_path)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"deny_prompts": [{"pattern": r"jane\s+doe", "reason": "client talent"}],
                                  "export": {"signer": {"organization": "Example Studio"}}}))
    sora_addon.worker.service.stop_worker("the policy changed")      # a studio sets it before Blender starts
    monkeypatch.setenv("SORA_POLICY", str(policy))
    out = tmp_path / "refused.mp4"
    with pytest.raises(RuntimeError, match="export.signer.organization"):
        bpy.ops.sora.export_deliverable(format="mp4", filepath=str(out))
    state = sora_addon.live.export_job(scene.session_uid)
    assert state.state == "ERROR" and "refused by policy rule export.signer.organization" in state.error
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == []

    scene.sora.model, scene.sora.prompt, scene.sora.steps = "tinyworld", "Jane Doe waves", 1
    with pytest.raises(RuntimeError):
        bpy.ops.sora.generate()
    job = sora_addon.live.job(scene)
    assert job.state == "ERROR" and "deny_prompts[0] (client talent)" in job.error, job.error
    shots = Path(bpy.context.preferences.addons["sora_blender"].preferences.output_dir)
    assert sorted(p.name for p in shots.iterdir()) == ["plate"] and folder.parent.name == "plate"   # nothing written
    monkeypatch.delenv("SORA_POLICY")
    sora_addon.worker.service.stop_worker("the policy changed")


def test_export_without_an_identity_says_where_to_set_one(scene, sora_addon, tmp_path, monkeypatch):
    for var in ("SORA_SIGN_CERT", "SORA_SIGN_KEY", "SORA_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))     # no studio config file either
    assert bpy.ops.sora.import_footage(filepath=_png_frames(tmp_path / "src"), name="plate") == {"FINISHED"}
    with pytest.raises(RuntimeError, match="no signing identity"):
        bpy.ops.sora.export_deliverable(format="mp4", allow_unsigned=True)
    state = sora_addon.live.export_job(scene.session_uid)
    assert state.hint == sora_addon.provenance.SIGNING_HINT
    bpy.ops.sora.verify_shot()
    shown = " ".join(labels(draw(getattr(bpy.types, PANEL))))
    assert "Fix: set Signing Chain and Signing Key" in shown
    assert "Unverified: not signed (frames match the manifest)" in shown and "Signer:" not in shown
