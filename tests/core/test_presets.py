"""Fast presets: named in sora_model.json or a LoRA's sidecar, picked by --preset, recorded."""

import json
import shutil
from pathlib import Path

import pytest

from sora_core.errors import SoraError
from sora_core.presets import parse

torch = pytest.importorskip("torch")

from tests.core.test_cli import sora  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402

SMALL = ["--frames", "5", "--width", "32", "--height", "32", "--prompt", "a red ball", "--seed", "2"]


@pytest.fixture(scope="module")
def wan_with_presets(tiny_wan_t2v, tmp_path_factory):
    """A copy of the tiny Wan naming a preset, and a LoRA whose sidecar names another."""
    root = tmp_path_factory.mktemp("presets")
    model = Path(shutil.copytree(tiny_wan_t2v, root / "tiny-wan-fast"))
    (model / "sora_model.json").write_text(json.dumps(
        {"default_steps": 3, "presets": {"fast": {"steps": 1, "guidance": 1.0, "description": "distilled"}}}))
    lora, _ = mf.comfy_lora(mf.transformer_state(tiny_wan_t2v), root / "lightx2v_tiny.safetensors")
    (root / "lightx2v_tiny.sora.json").write_text(json.dumps({"presets": {"4step": {"steps": 2, "guidance": 1}}}))
    return model, lora


def manifest(shot: Path) -> dict:
    return json.loads((shot / "manifest.json").read_text())


def test_the_model_preset_fills_in_steps_and_guidance_and_is_recorded(wan_with_presets, tmp_path):
    model, lora = wan_with_presets
    out = sora("generate", "--model", model, *SMALL, "--preset", "fast", "--out", "a", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    m = manifest(tmp_path / "a")
    assert (m["spec"]["steps"], m["spec"]["guidance"], m["spec"]["preset"]) == (1, 1.0, "fast")
    assert m["preset"] == {"name": "fast", "source": str(model / "sora_model.json"), "steps": 1,
                           "guidance": 1.0, "description": "distilled"}
    assert any(n.startswith("preset fast (sora_model.json): 1 steps, guidance 1") for n in m["notices"])

    # a LoRA's sidecar preset; the shot's own --guidance wins over the preset's
    out = sora("generate", "--model", model, *SMALL, "--lora", lora, "--preset", "4step", "--guidance", "2.5",
               "--out", "b", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    m = manifest(tmp_path / "b")
    assert (m["spec"]["steps"], m["spec"]["guidance"]) == (2, 2.5)
    assert m["preset"]["source"].endswith("lightx2v_tiny.sora.json") and m["model"]["loras"][0]["modules"] == 6


def test_an_unknown_preset_names_what_is_offered_and_makes_nothing(wan_with_presets, tmp_path):
    model, _ = wan_with_presets
    out = sora("generate", "--model", model, *SMALL, "--preset", "4step", "--out", "c", cwd=tmp_path)
    assert out.returncode == 2 and "'4step' is not a preset" in out.stderr and "it offers: fast" in out.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("entry, said", [
    ({"fast": {"steps": 4, "cfg": 1}}, "presets.fast.cfg is not a preset key"),
    ({"fast": {"steps": 2.5}}, "presets.fast.steps must be an integer"),
    ({"fast": {"guidance": "1"}}, "presets.fast.guidance must be a number"),
    ({"fast": 4}, "presets.fast must be an object"),
    ([1], "presets must be an object"),
])
def test_a_bad_preset_is_refused_naming_file_and_key(entry, said):
    with pytest.raises(SoraError) as err:
        parse(entry, "/m/sora_model.json")
    assert err.value.exit_code == 2 and err.value.message.startswith("/m/sora_model.json: " + said)
