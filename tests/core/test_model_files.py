"""One-file transformers over a base folder: original/ComfyUI keys, fp16/bf16/fp8, GGUF, refusals."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sora_core.backends import Request, load_backend  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402
from tests.fixtures import tiny_models  # noqa: E402

SIZE = 32


def request(frames=5, steps=2):
    return Request(mode="generate", prompt="a red ball moving left", negative_prompt="", seed=3,
                   steps=steps, guidance=4.0, width=SIZE, height=SIZE, frames=frames)


def frames_of(folder, dtype="auto", **components):
    backend = load_backend(Path(folder), Runtime(dtype=dtype), components or None)
    return backend.run(request(9 if "ltx" in str(folder) else 5), lambda s, t: None), backend


def mixed_bf16(state):
    """bf16 weights with Wan's float32 modules (norms, modulation tables) kept in float32."""
    keep = ("modulation", "norm3", "time_embedding")
    return {k: v if any(m in k.split(".") for m in keep) else v.to(torch.bfloat16) for k, v in state.items()}


@pytest.fixture(scope="module")
def wan_files(tiny_wan_t2v, tmp_path_factory):
    """The tiny Wan's transformer written in every layout this issue names."""
    d = tmp_path_factory.mktemp("wanfiles")
    state = mf.transformer_state(tiny_wan_t2v)
    original = mf.wan_original_keys(state)
    comfy = mf.wan_original_keys(state, comfy=True)
    return {"diffusers": mf.save(state, d / "diffusers.safetensors"),
            "original": mf.save(original, d / "wan_original.safetensors"),
            "comfy_fp16": mf.save(comfy, d / "wan_comfy_fp16.safetensors", torch.float16),
            "comfy_bf16": mf.save(mixed_bf16(comfy), d / "wan_comfy_bf16.safetensors"),
            "fp8": mf.write_fp8(comfy, d / "wan_fp8_e4m3fn.safetensors"),
            "fp8_scaled": mf.write_fp8(comfy, d / "wan_fp8_scaled.safetensors", scaled=True),
            "q8": mf.write_gguf(original, d / "wan-Q8_0.gguf", "Q8_0"),
            "state": state}


@pytest.fixture(scope="module")
def wan_base(tiny_wan_t2v):
    return frames_of(tiny_wan_t2v)[0]


@pytest.mark.parametrize("layout", ["diffusers", "original", "comfy_fp16"])
def test_same_weights_in_another_layout_give_the_same_frames(tiny_wan_t2v, wan_files, wan_base, layout):
    out, backend = frames_of(tiny_wan_t2v, transformer=str(wan_files[layout]))
    tol = 2e-3 if layout == "comfy_fp16" else 0.0     # fp16 weights: the base's, rounded
    assert np.abs(out - wan_base).max() <= tol
    assert backend.identity["components"]["transformer"]["path"] == str(Path(wan_files[layout]).resolve())


def test_weights_load_bit_identical_from_the_comfy_layout(tiny_wan_t2v, wan_files):
    from sora_core.backends.components import load_component
    from sora_core.models_index import read_model_index

    index = read_model_index(tiny_wan_t2v)
    model = load_component(index, Path(tiny_wan_t2v), "transformer", str(wan_files["original"]),
                           torch.float32)
    for key, value in model.state_dict().items():
        assert torch.equal(value, wan_files["state"][key]), key


@pytest.mark.parametrize("layout, tol", [("fp8", 0.08), ("fp8_scaled", 0.08), ("q8", 0.02)])
def test_quantized_files_give_frames_close_to_the_full_weights(tiny_wan_t2v, wan_files, wan_base,
                                                               layout, tol):
    out, backend = frames_of(tiny_wan_t2v, transformer=str(wan_files[layout]))
    err = np.abs(out - wan_base).mean()
    assert 0.0 < err <= tol, err
    if layout == "q8":
        from diffusers.quantizers.gguf.utils import GGUFLinear

        assert any(isinstance(m, GGUFLinear) for m in backend.pipe.transformer.modules())


def test_fp8_scaled_applies_its_scales(tiny_wan_t2v, wan_files):
    """Scales multiplied out: the weights come back within fp8 rounding, not off by the scale."""
    from sora_core.backends.components import load_component
    from sora_core.models_index import read_model_index

    index = read_model_index(tiny_wan_t2v)
    model = load_component(index, Path(tiny_wan_t2v), "transformer", str(wan_files["fp8_scaled"]),
                           torch.float32)
    w, ref = model.state_dict()["blocks.0.attn1.to_q.weight"], wan_files["state"]["blocks.0.attn1.to_q.weight"]
    assert (w - ref).abs().max() <= 0.07 * ref.abs().max()


def test_bf16_file_under_bf16_runtime_matches_the_folder_in_bf16(tiny_wan_t2v, wan_files):
    base, _ = frames_of(tiny_wan_t2v, dtype="bfloat16")
    out, backend = frames_of(tiny_wan_t2v, dtype="bfloat16", transformer=str(wan_files["comfy_bf16"]))
    assert np.array_equal(out, base)
    kept = dict(backend.pipe.transformer.named_parameters())["blocks.0.scale_shift_table"]
    assert kept.dtype == torch.float32       # _keep_in_fp32_modules as from_pretrained keeps them


def test_ltx_comfy_file_gives_the_same_frames(tiny_ltx, tmp_path):
    state = mf.transformer_state(tiny_ltx)
    path = mf.save(mf.ltx_original_keys(state), tmp_path / "ltxv.safetensors")
    base, _ = frames_of(tiny_ltx)
    out, _ = frames_of(tiny_ltx, transformer=str(path))
    assert np.array_equal(out, base)


def test_a_bigger_transformer_over_a_small_base_names_both_shapes(tiny_wan_t2v, tmp_path):
    from diffusers import WanTransformer3DModel

    big = tiny_models._wan_transformer(WanTransformer3DModel, tiny_models.Z_DIM)
    big = WanTransformer3DModel.from_config({**big.config, "num_attention_heads": 4})
    path = mf.save(mf.wan_original_keys(big.state_dict(), comfy=True), tmp_path / "wan_big.safetensors")
    with pytest.raises(SoraError) as err:
        load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)})
    assert err.value.exit_code == 2 and err.value.field == "components.transformer"
    msg = err.value.message
    assert "hidden 32" in msg and "hidden 16" in msg and "[32, 4, 1, 2, 2]" in msg and "[16, 4, 1, 2, 2]" in msg


def test_an_override_the_base_has_no_slot_for_is_refused(tiny_wan_t2v, wan_files):
    with pytest.raises(SoraError, match="has no transformer_2") as err:
        load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer_2": str(wan_files["original"])})
    assert err.value.exit_code == 2


def test_a_pickle_file_is_refused_before_reading(tiny_wan_t2v, tmp_path):
    path = tmp_path / "wan.ckpt"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(SoraError, match="pickle") as err:
        load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)})
    assert err.value.exit_code == 2 and "safetensors" in err.value.hint


def test_a_vae_file_gives_the_folders_frames_and_a_changed_one_changes_them(tiny_wan_t2v, wan_base, tmp_path):
    state = mf.transformer_state(tiny_wan_t2v, "vae")
    same = mf.save(state, tmp_path / "wan_vae.safetensors")
    out, backend = frames_of(tiny_wan_t2v, vae=str(same))
    assert np.array_equal(out, wan_base)
    assert backend.identity["components"]["vae"]["path"] == str(same.resolve())
    key = next(k for k in state if k.startswith("decoder.") and k.endswith(".weight") and state[k].ndim > 1)
    other = mf.save({**state, key: state[key] * 1.5}, tmp_path / "wan_vae_other.safetensors")
    assert not np.allclose(frames_of(tiny_wan_t2v, vae=str(other))[0], wan_base)
