"""Rules read from each model's own files, the documented defaults where they say nothing, and
``sora_model.json`` overrides (validated) — what ``sora models`` and every planner see."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sora_core.errors import SoraError
from sora_core.model_rules import RULES_FILE
from sora_core.models_index import inspect_model, list_models
from sora_core.planning import plan
from sora_core.spec import ShotSpec

RULES = {
    "tiny_wan_t2v": ("wan-t2v", "wan2.1", 16.0,
                     "modes: generate, restyle; frames 4k+1 up to 81 a pass; size multiple of 16"),
    "tiny_wan_ti2v": ("wan-ti2v", "wan2.2-ti2v-5b", 24.0,
                      "modes: generate, animate, restyle; frames 4k+1 up to 121 a pass; size multiple of 32"),
    "tiny_wan_a14b": ("wan-t2v", "wan2.2-a14b", 16.0,
                      "modes: generate; frames 4k+1 up to 81 a pass; size multiple of 16"),
    "tiny_wan_a14b_i2v": ("wan-i2v", "wan2.2-a14b", 16.0,
                          "modes: animate, interpolate; frames 4k+1 up to 81 a pass; size multiple of 16"),
    "tiny_ltx": ("ltx", "ltx-video", 24.0, "modes: generate, animate, extend, interpolate, restyle; "
                 "frames 8k+1 up to 257 a pass; size multiple of 32"),
    "tiny_ltx2": ("ltx2", "ltx-2", 24.0,
                  "modes: generate, animate, extend, interpolate; frames 8k+1 up to 481 a pass; "
                  "size multiple of 32"),
    "tiny_ltx2_hdr": ("ltx2-hdr", "ltx-2", 24.0, "modes: hdr; frames 8k+1 up to 481 a pass; size multiple of 32"),
}


@pytest.mark.parametrize("fixture", list(RULES))
def test_the_rules_are_read_from_the_models_files(request, fixture):
    pytest.importorskip("diffusers")
    family, variant, fps, line = RULES[fixture]
    caps = inspect_model(request.getfixturevalue(fixture)).capabilities
    assert (caps.family, caps.variant, caps.default_fps) == (family, variant, fps)
    assert caps.describe() == line and caps.notes == ()
    assert caps.experts == (2 if variant == "wan2.2-a14b" else 1)
    assert caps.audio == (family == "ltx2")
    assert caps.default_size[0] % caps.size_multiple == 0 and caps.valid_frames(caps.default_frames)


def test_ti2v_size_48_is_rounded_to_a_multiple_of_32_with_a_notice(tiny_wan_ti2v):
    caps = inspect_model(tiny_wan_ti2v).capabilities
    p = plan(ShotSpec.from_dict({"prompt": "x", "model": tiny_wan_ti2v, "width": 48, "height": 32}), caps)
    assert (p.width, p.height, p.fps, p.total) == (64, 32, 24.0, 49)
    assert "width rounded from 48 to 64 (wan-ti2v needs a multiple of 32)" in p.notices


def json_only_copy(folder, dest: Path) -> Path:
    """The model's JSON files alone: what the light half reads (no weights needed)."""
    for path in Path(folder).rglob("*.json"):
        target = dest / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return dest


def test_a_config_without_a_rule_gets_the_documented_default_with_a_notice(tiny_wan_t2v, tmp_path):
    folder = json_only_copy(tiny_wan_t2v, tmp_path / "bare-wan")
    vae = json.loads((folder / "vae/config.json").read_text())
    for key in ("scale_factor_temporal", "scale_factor_spatial", "temperal_downsample"):
        vae.pop(key, None)
    (folder / "vae/config.json").write_text(json.dumps(vae))
    caps = inspect_model(folder).capabilities
    assert (caps.frame_rule(), caps.size_multiple) == ("4k+1", 16)
    assert caps.notes == ("frame rule 4k+1 is the wan-t2v default (vae/config.json names no temporal "
                          "compression)", "size multiple 16 is the wan-t2v default (vae/config.json "
                          "names no spatial compression)")
    p = plan(ShotSpec.from_dict({"prompt": "x", "model": str(folder)}), caps)
    assert set(caps.notes) <= set(p.notices)


def test_sora_model_json_overrides_a_rule_and_says_so(tiny_wan_ti2v, tmp_path):
    folder = json_only_copy(tiny_wan_ti2v, tmp_path / "ti2v")
    (folder / RULES_FILE).write_text(json.dumps({"max_frames": 81, "default_fps": 16,
                                                 "modes": ["generate", "animate"]}))
    caps = inspect_model(folder).capabilities
    assert caps.describe() == "modes: generate, animate; frames 4k+1 up to 81 a pass; size multiple of 32"
    assert caps.default_fps == 16.0
    assert caps.notes == (f'{RULES_FILE} sets max_frames=81, default_fps=16, modes=["generate", "animate"]',)


BAD = [
    ({"frames_max": 49}, "frames_max is not a rule sora knows"),
    ({"max_frames": "many"}, "max_frames must be an integer"),
    ({"max_frames": 50}, "max_frames 50 does not follow the frame rule 4k+1"),
    ({"modes": ["extend"]}, "modes names extend, which wan-ti2v models cannot do"),
    ({"default_size": [48, 32]}, "default_size width 48 is not a multiple of 32"),
    ({"default_guidance_2": 3.0}, "default_guidance_2 applies to two-expert models"),
    ({"size_multiple": 0}, "size_multiple must be at least 1"),
]


@pytest.mark.parametrize("data, words", BAD, ids=[next(iter(b[0])) for b in BAD])
def test_a_bad_sora_model_json_is_refused_naming_the_file_and_the_key(tiny_wan_ti2v, tmp_path, data, words):
    folder = json_only_copy(tiny_wan_ti2v, tmp_path / "ti2v")
    (folder / RULES_FILE).write_text(json.dumps(data))
    with pytest.raises(SoraError) as err:
        inspect_model(folder)
    assert err.value.code == "invalid_input" and RULES_FILE in err.value.message
    assert words in err.value.message and RULES_FILE in err.value.hint


def test_models_lists_the_rules_as_read_and_a_broken_override_with_its_reason(tiny_wan_ti2v, tmp_path):
    root = tmp_path / "models"
    json_only_copy(tiny_wan_ti2v, root / "ti2v")
    broken = json_only_copy(tiny_wan_ti2v, root / "ti2v-broken")
    (broken / RULES_FILE).write_text("{not json")
    listed = {m.name: m for m in list_models([str(root)])}
    assert listed["ti2v"].capabilities.variant == "wan2.2-ti2v-5b"
    assert listed["ti2v-broken"].capabilities is None and "is not valid JSON" in listed["ti2v-broken"].problem
    out = subprocess.run([sys.executable, "-m", "sora_core.cli", "models", "--models-dir", str(root)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert ("wan-ti2v   modes: generate, animate, restyle; frames 4k+1 up to 121 a pass; size multiple "
            "of 32") in lines["ti2v"]
    assert "is not valid JSON" in lines["ti2v-broken"]
