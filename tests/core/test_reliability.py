"""Shared storage, tried as an attacker and a careless user would: planted links, a swapped
folder, two jobs on one folder, another shot in the folder, inputs as outputs, a full disk, a
read-only folder, an output root that is a file. Real files, links, mounts and worker processes."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("OpenImageIO")

from sora_core.manifest import read_manifest, verify_frames  # noqa: E402

from .mounts import read_only, small_tmpfs, writable_mount  # noqa: E402
from .test_cli import SMALL, files_in, sora, write_sequence  # noqa: E402


def gen(model, out, *extra, cwd, seed=1):
    return sora("generate", "--prompt", "a red ball moving right", "--model", model, *SMALL,
                "--out", out, "--seed", seed, *extra, cwd=cwd)


def exr_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".exr")


# -- writes that cannot be redirected -----------------------------------------------------------
def test_a_link_under_a_final_name_is_replaced_never_followed(tmp_path):
    from sora_core.frames.exr import write_exr
    from sora_core.manifest import write_json_atomic

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    shot = tmp_path / "shot"
    shot.mkdir()
    (shot / "manifest.json").symlink_to(victim)
    (shot / "a.0001.exr").symlink_to(victim)
    write_json_atomic(shot / "manifest.json", {"ok": True})
    import numpy as np
    write_exr(shot / "a.0001.exr", np.zeros((4, 4, 3), np.float32))
    assert victim.read_text() == "precious"
    assert not (shot / "manifest.json").is_symlink() and not (shot / "a.0001.exr").is_symlink()
    assert json.loads((shot / "manifest.json").read_text()) == {"ok": True}
    assert sorted(os.listdir(shot)) == ["a.0001.exr", "manifest.json"]     # random temporaries gone


def test_a_link_in_the_shot_path_is_refused(tmp_path):
    from sora_core.errors import SoraError
    from sora_core.safe_write import Folder

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "shots").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SoraError) as err:
        Folder.open(tmp_path, "shots/s")
    assert err.value.exit_code == 2 and "link" in err.value.message
    assert os.listdir(tmp_path / "elsewhere") == []


def test_planted_links_in_the_folder_are_refused_then_replaced_with_overwrite(tiny_ltx, tmp_path):
    victim = tmp_path / "victim.exr"
    victim.write_bytes(b"precious")
    shot = tmp_path / "s"
    shot.mkdir()
    (shot / "manifest.json").symlink_to(victim)
    (shot / "shot.0001.exr").symlink_to(victim)
    out = gen(tiny_ltx, "s", cwd=tmp_path)
    assert out.returncode == 2 and "already holds" in out.stderr, out.stderr
    out = gen(tiny_ltx, "s", "--overwrite", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert victim.read_bytes() == b"precious"
    assert not any(p.is_symlink() for p in shot.iterdir()) and verify_frames(shot) == []


SWAP_SPEC = {"prompt": "a red ball moving right", "frames": 20, "steps": 4, "seed": 1,
             "passes": {"length": 8, "overlap": 2}, "output": {"dir": "s", "name": "long"}}


def test_a_shot_folder_swapped_for_a_link_mid_job_fails_with_exit_2_and_nothing_leaves(tiny_tinyworld, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "spec.json").write_text(json.dumps({**SWAP_SPEC, "model": tiny_tinyworld}))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "sora_core.cli", "run", str(tmp_path / "spec.json"),
                             "--output-root", str(root), "--json"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    swapped = False
    for line in proc.stdout:
        event = json.loads(line)
        if not swapped and event["event"] == "frame":
            (root / "s").rename(root / "s_moved")
            (root / "s").symlink_to(outside)
            swapped = True
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 2 and swapped, err[-3000:]
    assert f"{root / 's'} was moved, removed or replaced by a link" in err
    assert os.listdir(outside) == []                            # nothing went through the link
    moved = root / "s_moved"
    if (moved / "manifest.json").is_file():                     # what stayed says what is there
        manifest = read_manifest(moved)
        assert sorted(f["file"] for f in manifest["frames"]) == exr_names(moved)


# -- one writer per shot folder ---------------------------------------------------------------
HOLD = textwrap.dedent("""
    import sys, time
    from sora_core.safe_write import Folder
    from sora_core.shot_lock import ShotLock
    lock = ShotLock(Folder.open(sys.argv[1], "s")).acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def test_a_second_job_into_a_locked_folder_exits_75_naming_the_holder_and_a_dead_one_is_taken_over(tiny_ltx, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        out = gen(tiny_ltx, "s", cwd=tmp_path)
        assert out.returncode == 75, out.stderr
        assert f"pid {holder.pid}" in out.stderr and "being written by another job" in out.stderr
        assert "host " in out.stderr and "started " in out.stderr
        assert exr_names(tmp_path / "s") == [] and time.monotonic() - t0 < 60
    finally:
        holder.kill()
        holder.wait()
    lock = json.loads((tmp_path / "s" / ".sora.lock").read_text())
    assert lock["pid"] == holder.pid                            # the dead job's lock file stays...
    out = gen(tiny_ltx, "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr                      # ...and is taken over
    assert not (tmp_path / "s" / ".sora.lock").exists() and len(exr_names(tmp_path / "s")) == 9


# -- nothing lost -----------------------------------------------------------------------------
def test_another_spec_into_a_finished_shot_is_refused_and_overwrite_replaces_it(tiny_ltx, tmp_path):
    assert gen(tiny_ltx, "s", cwd=tmp_path, seed=1).returncode == 0
    before = read_manifest(tmp_path / "s")
    out = gen(tiny_ltx, "s", cwd=tmp_path, seed=2)
    assert out.returncode == 2 and "already holds another shot (complete, 9 frames" in out.stderr
    assert "new version folder" in out.stderr and "--overwrite" in out.stderr
    assert read_manifest(tmp_path / "s") == before and verify_frames(tmp_path / "s") == []
    out = gen(tiny_ltx, "s", "--overwrite", cwd=tmp_path, seed=2)
    assert out.returncode == 0, out.stderr
    after = read_manifest(tmp_path / "s")
    assert after["seed"] == 2 and after["status"] == "complete" and verify_frames(tmp_path / "s") == []
    assert [f["sha256"] for f in after["frames"]] != [f["sha256"] for f in before["frames"]]


def test_identical_specs_give_byte_identical_frames(tiny_ltx, tmp_path):
    assert gen(tiny_ltx, "a", cwd=tmp_path).returncode == 0
    time.sleep(1.1)                                             # a wall-clock stamp would differ
    assert gen(tiny_ltx, "b", cwd=tmp_path).returncode == 0
    a, b = (read_manifest(tmp_path / d)["frames"] for d in ("a", "b"))
    assert [f["sha256"] for f in a] == [f["sha256"] for f in b]


def test_restyle_over_its_own_input_is_refused_before_work(tiny_tinyworld, tmp_path):
    pattern = write_sequence(tmp_path / "s", "shot", range(1, 9))
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    out = sora("restyle", "--prompt", "a blue ball", "--model", tiny_tinyworld, "--input", pattern,
               "--out", "s", "--name", "shot", "--steps", "2", cwd=tmp_path)
    assert out.returncode == 2 and "would be written over the input" in out.stderr, out.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before


# -- every environment failure classified -----------------------------------------------------
def test_a_full_disk_exits_75_saying_what_to_free_and_leaves_nothing_half_written(tiny_ltx, tmp_path):
    root = tmp_path / "full"
    with small_tmpfs(root, "24k"):
        out = sora("generate", "--prompt", "x", "--model", tiny_ltx, "--frames", "9", "--width", "64",
                   "--height", "64", "--steps", "1", "--out", "s", "--output-root", root, cwd=tmp_path)
        assert out.returncode == 75, out.stderr
        assert "no space left on the device" in out.stderr and "free at least" in out.stderr
        assert "this is a bug" not in out.stderr
        left = files_in(root)
        assert not [f for f in left if f.endswith(".exr") or "sora-tmp" in f]
        if (root / "s" / "manifest.json").exists():
            assert read_manifest(root / "s")["frames"] == []


def test_an_unwritable_shot_folder_exits_2_naming_it(tiny_ltx, tmp_path):
    shot = tmp_path / "s"
    with writable_mount(shot, "4m"):
        with read_only(shot):
            out = gen(tiny_ltx, "s", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"cannot write in {shot}" in out.stderr and "this is a bug" not in out.stderr


def test_an_output_root_that_is_a_file_exits_2_before_any_work(tiny_ltx, tmp_path):
    (tmp_path / "root").write_text("not a folder")
    t0 = time.monotonic()
    out = sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", "s",
               "--output-root", tmp_path / "root", "--json", cwd=tmp_path)
    assert out.returncode == 2 and "is a file, not a folder" in out.stderr, out.stderr
    assert out.stdout == "" and time.monotonic() - t0 < 30     # no worker was started


# -- model folders and inputs -----------------------------------------------------------------
def test_safetensors_only_is_enforced_per_file(tmp_path):
    from sora_core.backends.loading import check_safetensors_only
    from sora_core.errors import SoraError

    comp = tmp_path / "m" / "transformer"
    comp.mkdir(parents=True)
    (comp / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    (comp / "decoy.safetensors").write_bytes(b"x")          # does not cover the .bin
    with pytest.raises(SoraError) as err:
        check_safetensors_only(tmp_path / "m")
    assert err.value.exit_code == 2 and "transformer/diffusion_pytorch_model.bin" in err.value.message
    (comp / "diffusion_pytorch_model.safetensors").write_bytes(b"x")   # the file the loader reads
    text = tmp_path / "m" / "text_encoder"
    text.mkdir()
    (text / "pytorch_model.bin").write_bytes(b"pickle")
    (text / "model.safetensors").write_bytes(b"x")
    check_safetensors_only(tmp_path / "m")


def test_bad_model_folders_exit_2_and_models_lists_the_good_ones_with_a_warning(tiny_ltx, tmp_path):
    pickles = tmp_path / "pickles"
    pickles.mkdir()
    (pickles / "model.ckpt").write_bytes(b"pickle")
    out = sora("generate", "--prompt", "x", "--model", pickles, cwd=tmp_path)
    assert out.returncode == 2 and "pickle weights and no model_index.json" in out.stderr
    root = tmp_path / "models"
    (root / "listy").mkdir(parents=True)
    (root / "listy" / "model_index.json").write_text(json.dumps({"_class_name": ["WanPipeline"]}))
    (root / "good").symlink_to(tiny_ltx)
    out = sora("models", "--models-dir", root, cwd=tmp_path)
    assert out.returncode == 0 and "good" in out.stdout and "listy" not in out.stdout
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "listy" in warnings[0] and "_class_name" in warnings[0]


def test_a_sequence_with_gaps_is_noted_and_strict_refuses_it(tiny_tinyworld, tmp_path):
    pattern = write_sequence(tmp_path / "in", "r", [1, 2, 4, 5, 6, 7, 8, 9])
    args = ["restyle", "--prompt", "a blue ball", "--model", tiny_tinyworld, "--input", pattern,
            "--out", "s", "--dry-run"]
    out = sora(*args, cwd=tmp_path)
    assert out.returncode == 0 and "gaps (missing 3)" in out.stdout, out.stderr
    out = sora(*args, "--strict", cwd=tmp_path)
    assert out.returncode == 2 and "gaps (missing 3)" in out.stderr


def test_a_sequence_of_mixed_sizes_is_noted_and_strict_refuses_it_with_no_frames(tiny_tinyworld, tmp_path):
    """Found only once the worker reads the headers: a notice in the log and the shot made, or,
    with --strict, exit 2 naming two of the sizes and nothing written."""
    write_sequence(tmp_path / "in", "r", [1, 2, 3, 4], size=32)
    pattern = write_sequence(tmp_path / "in", "r", [5, 6, 7, 8], size=48)
    args = ["restyle", "--prompt", "a blue ball", "--model", tiny_tinyworld, "--input", pattern,
            "--steps", "1", "--width", "32", "--height", "32"]
    out = sora(*args, "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mixes frame sizes (32x32 (r.0001.exr), 48x48 (r.0005.exr))" in out.stderr
    assert len(exr_names(tmp_path / "s")) == 8
    out = sora(*args, "--out", "t", "--strict", cwd=tmp_path)
    assert out.returncode == 2 and "inputs.frames" in out.stderr and "48x48" in out.stderr, out.stderr
    assert not (tmp_path / "t").exists() or not exr_names(tmp_path / "t")


def test_an_input_over_the_size_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    import numpy as np
    from sora_core.errors import SoraError
    from sora_core.frames.exr import read_image, write_exr

    path = write_exr(tmp_path / "big.exr", np.zeros((40, 100, 3), np.float32))
    monkeypatch.setenv("SORA_MAX_INPUT_PX", "64")
    with pytest.raises(SoraError) as err:
        read_image(path)
    assert err.value.exit_code == 2 and "100x40, larger than the input limit of 64 px" in err.value.message
    monkeypatch.setenv("SORA_MAX_INPUT_PX", "128")
    assert read_image(path).shape == (40, 100, 3)
