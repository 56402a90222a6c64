"""LoRAs over a tiny Wan: ComfyUI keys at a strength, unknown keys refused, the warm cache swapping them."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from sora_core.backends import load_backend  # noqa: E402
from sora_core.backends.cache import BackendCache  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.model_files import Components, Lora  # noqa: E402
from sora_core.models_index import inspect_model  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402
from tests.core.test_model_files import request  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402


def run(backend):
    return backend.run(request(), lambda s, t: None)


@pytest.fixture(scope="module")
def lora(tiny_wan_t2v, tmp_path_factory):
    state = mf.transformer_state(tiny_wan_t2v)
    path, deltas = mf.comfy_lora(state, tmp_path_factory.mktemp("lora") / "style_comfy.safetensors")
    return path, deltas, state


def test_comfy_lora_at_strength_equals_the_merge_by_hand(tiny_wan_t2v, lora, tmp_path):
    path, deltas, state = lora
    merged = {k: v + 0.7 * deltas[k] if k in deltas else v for k, v in state.items()}
    merged_file = mf.save(merged, tmp_path / "merged.safetensors")
    by_hand = run(load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(merged_file)}))
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    base = run(backend)
    backend.set_loras([Lora(str(path), 0.7)])
    out = run(backend)
    assert np.abs(out - base).mean() > 1e-3             # the LoRA changes the shot
    assert np.abs(out - by_hand).max() < 1e-4           # ... exactly as merging it by hand does
    record = backend.identity["loras"][0]
    assert record["strength"] == 0.7 and record["modules"] == 6     # 3 module kinds x 2 blocks


def test_a_lora_that_matches_nothing_names_the_file_and_its_keys(tiny_wan_t2v, tmp_path):
    foreign = mf.save({"lora_unet_down_blocks_0_attn.lora_down.weight": torch.zeros(2, 8),
                       "lora_unet_down_blocks_0_attn.lora_up.weight": torch.zeros(8, 2)},
                      tmp_path / "sdxl_style.safetensors")
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    with pytest.raises(SoraError) as err:
        backend.set_loras([Lora(str(foreign))])
    assert err.value.exit_code == 2 and err.value.field == "loras[0].path"
    assert "sdxl_style.safetensors" in err.value.message and "lora_unet_down_blocks_0_attn" in err.value.message


def test_the_warm_cache_swaps_loras_and_gives_the_base_frames_back(tiny_wan_t2v, lora):
    path = lora[0]
    cache, events = BackendCache(), []
    model = inspect_model(tiny_wan_t2v)
    plain = run(cache.get(model, Runtime(), events.append, "a"))
    styled = run(cache.get(model, Runtime(), events.append, "b", Components(), [Lora(str(path), 0.7)]))
    stronger = run(cache.get(model, Runtime(), events.append, "c", Components(), [Lora(str(path), 1.0)]))
    again = run(cache.get(model, Runtime(), events.append, "d"))
    assert cache.loads == 1 and len(events) == 1           # one load, LoRAs swapped in place
    assert not np.array_equal(styled, plain) and not np.array_equal(stronger, styled)
    assert np.array_equal(again, plain)                    # bit for bit: the adapters were unloaded
    assert "loras" not in cache.backend.identity


def test_a_refused_lora_leaves_no_adapter_behind_for_the_next_shot(tiny_wan_t2v, lora, tmp_path):
    foreign = mf.save({"lora_unet_down_blocks_0_attn.lora_down.weight": torch.zeros(2, 8),
                       "lora_unet_down_blocks_0_attn.lora_up.weight": torch.zeros(8, 2)},
                      tmp_path / "sdxl_style.safetensors")
    cache, model = BackendCache(), inspect_model(tiny_wan_t2v)
    plain = run(cache.get(model, Runtime(), lambda e: None, "a"))
    with pytest.raises(SoraError):          # the first LoRA loads, the second is refused
        cache.get(model, Runtime(), lambda e: None, "b", Components(), [Lora(str(lora[0]), 0.7), Lora(str(foreign))])
    again = run(cache.get(model, Runtime(), lambda e: None, "c"))
    assert np.array_equal(again, plain) and "loras" not in cache.backend.identity and cache.loads == 1
