"""GGUF K-quants (Q4_K, Q5_K, Q6_K) load through diffusers' GGUF quantizer and compute with the
weights the gguf package's reference decoder reads from the same blocks.

The gguf package writes no K-quant encoder, so the blocks are random bytes with sane fp16 scales
(as real files hold, just not the result of quantizing a trained model)."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from sora_core.backends.components import load_component  # noqa: E402
from sora_core.models_index import read_model_index  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402

# where each block keeps its fp16 scale(s): (offset from the start, or from the end if negative)
SCALES = {"Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (-2,)}


@pytest.fixture(scope="module")
def wide_wan(tmp_path_factory):
    """A one-block Wan base (configs only) whose Linear layers are 256 wide, a K-quant's block."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=128,
                                  in_channels=16, out_channels=16, text_dim=256, freq_dim=256, ffn_dim=512,
                                  num_layers=1, rope_max_seq_len=32)
    base = tmp_path_factory.mktemp("kquant") / "wan_wide"
    (base / "transformer").mkdir(parents=True)
    model.save_config(base / "transformer")
    (base / "model_index.json").write_text(json.dumps(
        {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}))
    return base, {k: v.detach() for k, v in model.state_dict().items()}


def write_kquant(state: dict, path: Path, qtype: str, seed: int = 0) -> dict:
    """2-D weights 256-wide as random ``qtype`` blocks, the rest F32; returns each quantized
    weight as the gguf package's reference decoder reads it."""
    quant = gguf.GGMLQuantizationType[qtype]
    block, size = gguf.GGML_QUANT_SIZES[quant]
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "wan")
    reference = {}
    for key, value in mf.wan_original_keys(state).items():
        if value.ndim == 2 and value.shape[1] % block == 0:
            blocks = rng.integers(0, 256, (value.shape[0], value.shape[1] // block, size), dtype=np.uint8)
            for offset in SCALES[qtype]:
                at = offset if offset >= 0 else size + offset
                blocks[..., at:at + 2] = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)
            raw = blocks.reshape(value.shape[0], -1)
            writer.add_tensor(key, raw, raw_shape=raw.shape, raw_dtype=quant)
            reference[key] = gguf.quants.dequantize(raw, quant)
        else:
            writer.add_tensor(key, np.ascontiguousarray(value.float().numpy()))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return reference


@pytest.mark.parametrize("qtype", ["Q4_K", "Q5_K", "Q6_K"])
def test_k_quant_weights_are_the_reference_decoders(wide_wan, tmp_path, qtype):
    from diffusers.quantizers.gguf.utils import GGUFParameter, dequantize_gguf_tensor

    base, state = wide_wan
    path = tmp_path / f"wan-{qtype}.gguf"
    reference = write_kquant(state, path, qtype)
    model = load_component(read_model_index(base), base, "transformer", str(path), torch.float32)
    proj = model.blocks[0].attn1.to_q
    assert isinstance(proj.weight, GGUFParameter) and proj.weight.quant_type.name == qtype
    got = dequantize_gguf_tensor(proj.weight).float().numpy()
    want = reference["blocks.0.self_attn.q.weight"]
    assert np.isfinite(want).all() and want.std() > 0
    np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max())   # diffusers decodes in fp16
    x = torch.randn(3, 256)                                 # and the layer computes with them
    ref = x.numpy() @ want.T + proj.bias.detach().numpy()
    np.testing.assert_allclose(proj(x).detach().numpy(), ref, atol=2e-3 * np.abs(ref).max())
