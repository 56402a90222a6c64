"""The ``sora`` command end to end: real worker, real files, the documented exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SORA = [sys.executable, "-m", "sora_core.cli"]
SMALL = ["--frames", "9", "--width", "32", "--height", "32", "--steps", "2"]


def sora(*args, cwd, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("SORA_OUTPUT_ROOT", None)
    return subprocess.run([*SORA, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def files_in(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def write_sequence(folder: Path, name: str, numbers, size=32):
    from sora_core.frames.exr import write_exr
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        img = np.full((size, size, 3), 0.05, np.float32)
        img[8:16, 4 + n % 20:12 + n % 20] = (0.8, 0.1, 0.05)
        write_exr(folder / f"{name}.{n:04d}.exr", img, {})
    return folder / f"{name}.####.exr"


def test_generate_json_events_info_and_sheet(tiny_ltx, tmp_path):
    out = sora("generate", "--prompt", "a red ball moving right", "--model", tiny_ltx, *SMALL,
               "--out", "shots/ball", "--name", "ball", "--seed", "11", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["frames"] == 9
    assert {"loading", "progress", "frame", "done"} <= {e["event"] for e in events}
    frame = tmp_path / "shots/ball/ball.0001.exr"
    info = sora("info", frame, "--json", cwd=tmp_path)
    prov = json.loads(info.stdout)
    assert prov["sora:prompt"] == "a red ball moving right" and prov["sora:seed"] == "11"
    assert prov["sora:generator"] == "sora_core" and prov["sora:version"]
    sheet = sora("sheet", tmp_path / "shots/ball", cwd=tmp_path)
    assert sheet.returncode == 0, sheet.stderr
    assert (tmp_path / "shots/ball/contact_sheet.png").stat().st_size > 100


def test_near_miss_is_rounded_with_a_visible_notice(tiny_ltx, tmp_path):
    out = sora("generate", "--prompt", "x", "--model", tiny_ltx, "--frames", "10", "--width", "40",
               "--height", "32", "--steps", "1", "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "frames rounded from 10 to 9" in out.stderr and "width rounded from 40 to 32" in out.stderr
    assert len(list((tmp_path / "s").glob("*.exr"))) == 9


def test_models_lists_capabilities(tiny_ltx, tmp_path):
    out = sora("models", "--models-dir", Path(tiny_ltx).parent, "--json", cwd=tmp_path)
    models = {m["name"]: m for m in json.loads(out.stdout)}
    entry = models[Path(tiny_ltx).name]
    assert entry["family"] == "ltx" and entry["capabilities"]["frame_multiple"] == 8
    assert "extend" in entry["capabilities"]["modes"]


def test_spec_schema_is_json(tmp_path):
    out = sora("spec-schema", cwd=tmp_path)
    assert json.loads(out.stdout)["title"] == "ShotSpec"


def test_run_extend_continues_the_numbering(tiny_ltx, tmp_path):
    pattern = write_sequence(tmp_path / "renders", "beauty", range(1, 10))
    spec = {"mode": "extend", "prompt": "the ball keeps moving", "model": str(tiny_ltx),
            "frames": 8, "width": 32, "height": 32, "steps": 2,
            "inputs": {"frames": str(pattern), "direction": "forward", "context": 9},
            "output": {"dir": "renders", "name": "beauty"}}
    (tmp_path / "extend.json").write_text(json.dumps(spec))
    out = sora("run", "extend.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    numbers = sorted(int(p.name.split(".")[1]) for p in (tmp_path / "renders").glob("beauty.*.exr"))
    assert numbers == list(range(1, 18))


# ---- bad input: documented exit code, clear message, nothing half-written --------------------

def bad_spec_cases(tmp_path, tiny_ltx, pickle_model):
    corrupt = tmp_path / "in" / "corrupt.exr"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"v/1\x01not an exr at all" * 10)
    write_sequence(tmp_path / "in", "clip", range(1, 4))
    truncated = tmp_path / "in" / "clip.0002.exr"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    base = {"prompt": "x", "model": str(tiny_ltx), "frames": 9, "width": 32, "height": 32,
            "steps": 1, "output": {"dir": "out", "name": "shot"}}
    return {
        "malformed json": ('{"prompt": "x",', 2, "not valid JSON"),
        "unknown mode": ({**base, "mode": "dance"}, 2, "use one of: generate"),
        "unknown field": ({**base, "colour": "red"}, 2, "unknown field"),
        "impossible frames": ({**base, "frames": 0}, 2, "frames"),
        "impossible size": ({**base, "width": 9000}, 2, "width"),
        "missing input": ({**base, "mode": "animate", "inputs": {"image": str(tmp_path / "nope.png")}}, 3,
                          "nope.png"),
        "corrupt exr": ({**base, "mode": "animate", "inputs": {"image": str(corrupt)}}, 2, "corrupt.exr"),
        "truncated exr": ({**base, "mode": "animate", "inputs": {"image": str(truncated)}}, 2,
                          "clip.0002.exr"),
        "escaping output": ({**base, "output": {"dir": "../elsewhere", "name": "shot"}}, 2, "outside"),
        "absolute elsewhere": ({**base, "output": {"dir": "/tmp/elsewhere", "name": "shot"}}, 2, "outside"),
        "pickle-only model": ({**base, "model": str(pickle_model)}, 2, "safetensors"),
        "missing model": ({**base, "model": str(tmp_path / "no-model")}, 3, "not found"),
    }


@pytest.mark.parametrize("case", ["malformed json", "unknown mode", "unknown field", "impossible frames",
                                  "impossible size", "missing input", "corrupt exr", "truncated exr",
                                  "escaping output", "absolute elsewhere", "pickle-only model",
                                  "missing model"])
def test_bad_input(case, tiny_ltx, pickle_only_model, tmp_path):
    spec, code, words = bad_spec_cases(tmp_path, tiny_ltx, pickle_only_model)[case]
    (tmp_path / "spec.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    before = files_in(tmp_path)
    out = sora("run", "spec.json", cwd=tmp_path)
    assert out.returncode == code, out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr
    assert files_in(tmp_path) == before        # no partial frame, no temp file, no manifest


def test_worker_killed_mid_job_exits_75_and_leaves_nothing(tiny_ltx, tmp_path):
    proc = subprocess.Popen([*SORA, "generate", "--prompt", "x", "--model", str(tiny_ltx), "--frames", "9",
                             "--width", "32", "--height", "32", "--steps", "400", "--out", "s", "--json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker_pid = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["step"] >= 1:
            worker_pid = _worker_pid_of(proc.pid)
            os.kill(worker_pid, 9)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 75
    assert '"worker_died"' in rest
    # no frame, no claim, no lock: the client tidies what the dead worker could not
    assert not (tmp_path / "s").exists() or files_in(tmp_path / "s") == []


def _worker_pid_of(parent):
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert children, "the CLI has no worker child process"
    return int(children[0])


def test_prompt_schedule_flags_and_file_make_the_spec(tmp_path):
    (tmp_path / "story.txt").write_text("# seconds prompt\n4 the red ball bouncing\n8.5s a blue ball moving up\n")
    out = sora("generate", "--prompt", "a red ball moving right", "--duration", "12", "--prompt-at", "2s",
               "a red ball moving left", "--prompt-schedule", "story.txt", "--pass-length", "12",
               "--overlap", "3", "--save-spec", "long.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "long.json").read_text())
    assert data["duration"] == 12 and data["passes"]["length"] == 12 and data["passes"]["overlap"] == 3
    assert data["prompt_schedule"] == [{"start": 2.0, "prompt": "a red ball moving left"},
                                       {"start": 4.0, "prompt": "the red ball bouncing"},
                                       {"start": 8.5, "prompt": "a blue ball moving up"}]
    bad = sora("generate", "--prompt", "x", "--prompt-at", "soon", "y", "--save-spec", "b.json", cwd=tmp_path)
    assert bad.returncode == 2 and "not a time in seconds" in bad.stderr


def test_an_explicit_out_outside_the_current_folder_is_honoured(tiny_ltx, tmp_path):
    """A folder typed on the command line is the user's choice; a spec file's path stays confined."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere" / "ball"
    work.mkdir()
    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx, *SMALL, "--out", elsewhere,
               "--name", "ball", cwd=work)
    assert out.returncode == 0, out.stderr
    assert (elsewhere / "manifest.json").is_file() and (elsewhere / "ball.0001.exr").is_file()
    assert sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", "spec_shot",
                "--save-spec", "spec.json", cwd=work).returncode == 0
    spec = json.loads((work / "spec.json").read_text())
    spec["output"]["dir"] = str(tmp_path / "elsewhere" / "from-spec")
    (work / "spec.json").write_text(json.dumps(spec))
    out = sora("run", "spec.json", cwd=work)
    assert out.returncode == 2 and "outside" in out.stderr
    assert "--output-root" in out.stderr and "SORA_OUTPUT_ROOT" in out.stderr
    assert not (tmp_path / "elsewhere" / "from-spec").exists()
    out = sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", elsewhere,
               "--output-root", work, "--name", "ball", cwd=work)
    assert out.returncode == 2 and "--output-root" in out.stderr   # both typed: the root wins
