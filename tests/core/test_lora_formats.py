"""LoRA key formats (kohya/musubi, Kijai with diff_b, a real peft export) against a merge by hand;
which expert of a two-expert model each LoRA reaches; a transformer_2 file."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from sora_core.backends import load_backend  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.model_files import Lora  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402
from tests.core.test_model_files import request  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402


def run(backend):
    return backend.run(request(), lambda s, t: None)


@pytest.mark.parametrize("fmt", ["kohya", "kijai", "peft"])
def test_each_key_format_at_strength_equals_the_merge_by_hand(tiny_wan_t2v, tmp_path, fmt):
    state = mf.transformer_state(tiny_wan_t2v)
    path, deltas, biases = mf.lora_file(state, tmp_path / f"{fmt}.safetensors", fmt)
    merged = {k: v + 0.7 * deltas[k] if k in deltas else v + 0.7 * biases[k] if k in biases else v
              for k, v in state.items()}
    by_hand = run(load_backend(Path(tiny_wan_t2v), Runtime(),
                               {"transformer": str(mf.save(merged, tmp_path / "merged.safetensors"))}))
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    base = run(backend)
    backend.set_loras([Lora(str(path), 0.7)])
    out = run(backend)
    assert np.abs(out - base).mean() > 1e-3
    assert np.abs(out - by_hand).max() < 1e-4, np.abs(out - by_hand).max()
    assert backend.identity["loras"][0]["modules"] == 20        # 10 projections x 2 blocks


def test_a_kohya_lora_missing_modules_is_refused_naming_the_file(tiny_wan_t2v, tmp_path):
    state = mf.transformer_state(tiny_wan_t2v)
    path, _, _ = mf.lora_file(state, tmp_path / "partial_kohya.safetensors", "kohya", modules=("attn1.to_q",))
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    with pytest.raises(SoraError) as err:
        backend.set_loras([Lora(str(path))])
    assert err.value.exit_code == 2 and "partial_kohya.safetensors does not fit" in err.value.message
    assert "lora_unet_blocks_0_self_attn_q" in err.value.message
    np.testing.assert_array_equal(run(backend), run(load_backend(Path(tiny_wan_t2v), Runtime())))


def _reached(module, prefix="sora0_"):
    return sum(1 for m in module.modules() for name in getattr(m, "lora_A", {}) if name.startswith(prefix))


@pytest.mark.parametrize("target, high, low", [("all", 6, 6), ("transformer", 6, 0), ("transformer_2", 0, 6)])
def test_a14b_loras_reach_the_expert_they_name(tiny_wan_a14b, tmp_path, target, high, low):
    state = mf.transformer_state(tiny_wan_a14b, "transformer_2")
    path, _ = mf.comfy_lora(state, tmp_path / "expert.safetensors")
    backend = load_backend(Path(tiny_wan_a14b), Runtime())
    base = run(backend)
    backend.set_loras([Lora(str(path), 1.0, target)])
    assert (_reached(backend.pipe.transformer), _reached(backend.pipe.transformer_2)) == (high, low)
    assert backend.identity["loras"][0]["modules"] == high + low
    assert not np.array_equal(run(backend), base)


def test_a14b_low_noise_expert_from_a_comfy_file_gives_the_same_frames(tiny_wan_a14b, tmp_path):
    state = mf.transformer_state(tiny_wan_a14b, "transformer_2")
    path = mf.save(mf.wan_original_keys(state, comfy=True), tmp_path / "low_noise.safetensors")
    base = run(load_backend(Path(tiny_wan_a14b), Runtime()))
    backend = load_backend(Path(tiny_wan_a14b), Runtime(), {"transformer_2": str(path)})
    np.testing.assert_array_equal(run(backend), base)
    assert backend.identity["components"]["transformer_2"]["path"] == str(path.resolve())
