"""The extension builds with Blender's own tool, installs into bpy, enables and disables cleanly."""

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import build_extension  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    stage = tmp_path_factory.mktemp("stage") / "extension"
    build_extension.main(["--out-dir", str(out), "--stage-dir", str(stage)])
    zips = list(out.glob("sora_blender-*.zip"))
    assert len(zips) == 1
    return zips[0], stage


def test_manifest_validates_and_zip_holds_addon_and_wheel(built):
    zip_path, stage = built
    blender_ext = build_extension.find_blender_ext()
    proc = subprocess.run([sys.executable, str(blender_ext), "validate", str(stage)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    wheels = [n for n in names if n.startswith("wheels/sora_core-") and n.endswith(".whl")]
    assert len(wheels) == 1
    manifest = tomllib.loads(zipfile.ZipFile(zip_path).read("blender_manifest.toml").decode())
    assert manifest["wheels"] == ["./" + wheels[0]]
    assert set(manifest["permissions"]) == {"files", "network"}     # Set Up Worker runs pip
    assert "pip" in manifest["permissions"]["network"]
    assert "nodes/graph.py" in names and "worker/service.py" in names    # the packages are shipped
    assert manifest["blender_version_min"] == "4.2.0"
    # the add-on never imports torch (the worker does, in its own process)
    for name in names:
        if name.endswith(".py"):
            text = zipfile.ZipFile(zip_path).read(name).decode()
            assert "import torch" not in text, name
            assert "import OpenImageIO" not in text, name      # the add-on needs bpy only


def test_install_enable_disable_cleanly(built, tmp_path):
    zip_path, _ = built
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), BLENDER_USER_RESOURCES=str(home / "blender"))
    env.pop("PYTHONPATH", None)        # a developer's checkout on the path would hide the wheel
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("install_check.py")), str(zip_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SORA_INSTALL ")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(line[len("SORA_INSTALL "):])
    assert r["install"] == ["FINISHED"] and r["enabled"] and r["scene_prop"]
    assert r["panels"] == ["SORA_PT_compositor", "SORA_PT_sequencer", "SORA_PT_view3d"]
    assert "SORA_OT_generate" in r["types"] and r["generate_poll"]
    assert r["sora_core"].startswith(str(home)), "sora_core must come from the bundled wheel"
    assert not r["torch_imported"]
    assert r["user_dir"].startswith(str(home))
    # disabled: nothing left behind
    assert not r["after_disable_enabled"] and not r["after_scene_prop"]
    assert r["after_types"] == []
    assert not r["timer_left"]
    assert r["handlers_changed"] == {}
    assert r["atexit_left"] == 0


SETUP_FAILS = r"""
import json, sys
import bpy
import addon_utils
bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
MOD = "bl_ext.user_default.sora_blender"
wpython, setup = sys.modules[MOD + ".worker.python"], sys.modules[MOD + ".worker.setup"]
venv_python = wpython.venv_python()
seen = []                       # (line, did the venv exist when the line was printed)


class Tee:
    def __init__(self, out):
        self.out = out

    def write(self, text):
        if text.startswith("sora: "):
            seen.append((text.strip(), venv_python.exists()))
        return self.out.write(text)

    def flush(self):
        self.out.flush()


prefs = bpy.context.preferences.addons[MOD].preferences
prefs.pip_args = "--no-index --no-such-option"        # pip refuses it: the set-up fails for real
sys.stdout = Tee(sys.stdout)
try:
    result, error = sorted(bpy.ops.sora.setup_worker()), ""
except RuntimeError as exc:
    result, error = ["RuntimeError"], str(exc)
out = {"result": result, "error": error, "venv": str(venv_python)}
marker = wpython.venv_dir() / ".sora-ready"
try:
    # the failed set-up left a venv without the ready marker: it is not the worker Python
    out["after_fail"] = [venv_python.exists(), marker.exists(), wpython.worker_python()]
    out["problem"] = setup.setup_problem()

    # a set-up that finishes (offline: the bundled wheel without its dependencies) writes the marker
    prefs.pip_args = "--no-index --no-deps"
    out["ok_result"] = sorted(bpy.ops.sora.setup_worker())
    out["after_ok"] = [marker.read_text().strip() if marker.exists() else None, wpython.worker_python(),
                       prefs.worker_python, setup.setup_problem()]

    # set up again and fail: the marker is removed first, so the half-made venv is not used, even
    # though the preference now names its Python; Check Worker says what to do
    prefs.pip_args = "--no-index --no-such-option"
    try:
        bpy.ops.sora.setup_worker()
    except RuntimeError:
        pass
    out["after_refail"] = [marker.exists(), wpython.worker_python(), prefs.worker_python]
    try:
        out["check"] = sorted(bpy.ops.sora.check_worker())
    except RuntimeError as exc:
        out["check"] = str(exc)
except Exception as exc:
    out["script_error"] = f"{type(exc).__name__}: {exc}"
sys.stdout = sys.stdout.out
out["seen"] = seen
print("SORA_SETUP " + json.dumps(out), flush=True)
"""


def test_setup_worker_in_background_prints_as_it_runs_and_fails_loudly(built, tmp_path):
    """`blender -b`: each set-up step is printed while it runs (not only the last lines at the end)
    and a failed pip makes the operator fail, so scripts and farm set-up jobs can tell. Only a
    set-up that finished marks its venv ready (.sora-ready), and only a ready venv is used."""
    zip_path, _ = built
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), BLENDER_USER_RESOURCES=str(home / "blender"))
    env.pop("SORA_WORKER_PYTHON", None)
    proc = subprocess.run([sys.executable, "-c", SETUP_FAILS, str(zip_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SORA_SETUP ")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(line[len("SORA_SETUP "):])
    assert r["venv"].startswith(str(home))
    assert r["result"] == ["RuntimeError"], r
    assert "Set Up Worker failed" in r["error"] and "exit code 2" in r["error"]
    lines = [text for text, _ in r["seen"]]
    assert lines[0].startswith("sora: $ ") and " -m venv " in lines[0]
    assert r["seen"][0][1] is False, "the venv step was printed only after it had run"
    assert any("no such option" in text for text in lines)
    # the failed set-up leaves no ready marker: its half-made venv is not picked
    venv_exists, marker, python = r["after_fail"]
    assert venv_exists and not marker
    assert python == sys.executable and python != r["venv"]
    assert "script_error" not in r, r["script_error"]
    assert "did not finish" in r["problem"]
    # a set-up that finishes marks the venv with the sora_core version and it is used
    import sora_core
    assert r["ok_result"] == ["FINISHED"], lines[-6:]
    assert r["after_ok"] == [sora_core.__version__, r["venv"], "", ""]   # Worker Python left empty
    assert "sora: Worker environment installed, but its check failed: " + r["venv"] in lines
    # a later failed set-up removed the stale marker first
    assert r["after_refail"] == [False, sys.executable, ""]
    assert "the worker set-up did not finish" in r["check"] and "Set Up Worker again" in r["check"]
