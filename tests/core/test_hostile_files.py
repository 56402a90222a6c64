"""Hostile and damaged weights files: refused with a clear error (exit 2), nothing executed,
whether named by a shot (transformer, LoRA) or found by `sora models`."""

import json
import pickle
import struct
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from sora_core.backends import load_backend  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.model_files import Lora, read_header  # noqa: E402
from sora_core.model_scan import inspect_file  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402


class Payload:
    """Unpickling this would create the marker file: proof that nothing ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def pickle_named(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    return path


def huge_claim(path: Path) -> Path:
    """A safetensors header claiming a 10^6 x 10^6 float32 tensor over 16 bytes of data."""
    header = json.dumps({"blocks.0.attn1.to_q.weight": {"dtype": "F32", "shape": [10**6, 10**6],
                                                        "data_offsets": [0, 4 * 10**12]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return path


def refused(load) -> SoraError:
    with pytest.raises(SoraError) as err:
        load()
    assert err.value.exit_code == 2
    return err.value


@pytest.mark.parametrize("suffix", [".safetensors", ".gguf"])
def test_a_pickle_under_a_weights_name_is_refused_and_never_unpickled(tiny_wan_t2v, tmp_path, suffix):
    marker = tmp_path / "ran"
    path = pickle_named(tmp_path / f"wan{suffix}", marker)
    err = refused(lambda: load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)}))
    assert err.field == "components.transformer" and str(path) in err.message
    assert "not a" in err.message and not marker.exists()
    assert inspect_file(path, "transformer").label == "unreadable" and not marker.exists()


def test_a_pickle_named_as_a_lora_is_refused_and_never_unpickled(tiny_wan_t2v, tmp_path):
    marker = tmp_path / "ran"
    path = pickle_named(tmp_path / "style.safetensors", marker)
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    err = refused(lambda: backend.set_loras([Lora(str(path))]))
    assert err.field == "loras[0].path" and not marker.exists()


def test_a_header_claiming_a_huge_tensor_is_refused_before_any_read(tiny_wan_t2v, tmp_path):
    path = huge_claim(tmp_path / "huge.safetensors")
    err = refused(lambda: read_header(path))
    assert "claims shape [1000000, 1000000] F32" in err.message and "16 bytes of data" in err.message
    err = refused(lambda: load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)}))
    assert err.message.startswith("components.transformer: ") and "claims shape" in err.message
    backend = load_backend(Path(tiny_wan_t2v), Runtime())
    assert refused(lambda: backend.set_loras([Lora(str(path))])).field == "loras[0].path"
    info = inspect_file(path, "transformer")
    assert info.label == "unreadable" and "claims shape" in info.problem


def test_a_truncated_gguf_is_refused(tiny_wan_t2v, tmp_path):
    path = mf.write_gguf(mf.wan_original_keys(mf.transformer_state(tiny_wan_t2v)), tmp_path / "cut.gguf")
    path.write_bytes(path.read_bytes()[:-4096])
    err = refused(lambda: load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)}))
    assert err.field == "components.transformer" and "cut.gguf" in err.message


def test_a_gguf_of_another_architecture_is_refused_naming_both(tiny_wan_t2v, tiny_ltx, tmp_path):
    wan = mf.write_gguf(mf.wan_original_keys(mf.transformer_state(tiny_wan_t2v)), tmp_path / "wan-Q8_0.gguf")
    err = refused(lambda: load_backend(Path(tiny_ltx), Runtime(), {"transformer": str(wan)}))
    assert "does not fit the base" in err.message and "Wan T2V" in err.message and "LTX-Video" in err.message
    llm = {"token_embd.weight": torch.randn(64, 32), "blk.0.attn_q.weight": torch.randn(32, 32)}
    other = mf.write_gguf(llm, tmp_path / "llama-Q8_0.gguf", arch="llama")
    err = refused(lambda: load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(other)}))
    assert "llama-Q8_0.gguf" in err.message and err.field == "components.transformer"
    assert "declared architecture 'llama'" in err.message and "does not fit the base" in err.message


def test_a_quantization_sora_cannot_apply_is_refused_by_name(tiny_wan_t2v, tmp_path):
    state = mf.wan_original_keys(mf.transformer_state(tiny_wan_t2v), comfy=True)
    state["model.diffusion_model.blocks.0.self_attn.q.weight_scale"] = torch.ones(1)
    path = mf.save(state, tmp_path / "wan_nvfp4.safetensors")
    err = refused(lambda: load_backend(Path(tiny_wan_t2v), Runtime(), {"transformer": str(path)}))
    assert "uses a quantization sora cannot apply" in err.message and "q.weight_scale" in err.message
