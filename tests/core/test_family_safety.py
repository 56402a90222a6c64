"""Every new folder kind is loaded as safely as Wan 2.1's (tests/core/test_backends.py): a
component whose code would come from the folder, and pickle weights in any of its parts (the
second expert, LTX-2's vocoder and connectors, the latent upsampler), are refused by name before
anything is loaded (exit 2)."""

import json
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sora_core.backends import load_backend  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402

# (fixture, component given foreign code, folder whose weights become a pickle)
KINDS = [("tiny_wan_ti2v", "transformer", "vae"),
         ("tiny_wan_a14b", "transformer_2", "transformer_2"),
         ("tiny_wan_a14b_i2v", "transformer_2", "transformer"),
         ("tiny_ltx2", "connectors", "vocoder"),
         ("tiny_ltx2_hdr", "audio_vae", "connectors"),
         ("tiny_ltx2_upsampled", "vocoder", "latent_upsampler")]


@pytest.mark.parametrize("fixture, component, pickled", KINDS, ids=[k[0][5:] for k in KINDS])
def test_foreign_code_and_pickle_weights_are_refused_in_every_new_kind(request, tmp_path, fixture,
                                                                      component, pickled):
    import torch
    from safetensors.torch import load_file

    base = request.getfixturevalue(fixture)
    coded = tmp_path / "coded"
    shutil.copytree(base, coded)
    index = json.loads((coded / "model_index.json").read_text())
    assert component in index
    index[component] = ["evil_pkg", "EvilModel"]
    (coded / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(SoraError) as err:
        load_backend(coded, Runtime())
    assert err.value.exit_code == 2 and "evil_pkg" in err.value.message and "never runs code" in err.value.message

    pickles = tmp_path / "pickles"
    shutil.copytree(base, pickles)
    weights = sorted((pickles / pickled).glob("*.safetensors"))
    assert weights
    for st in weights:
        torch.save(load_file(st), st.with_suffix(".bin"))
        st.unlink()
    for shard_index in (pickles / pickled).glob("*.safetensors.index.json"):
        shard_index.unlink()
    with pytest.raises(SoraError) as err:
        load_backend(pickles, Runtime())
    assert err.value.exit_code == 2 and "pickle" in err.value.message
    assert f"{pickled}/{weights[0].with_suffix('.bin').name}" in err.value.message
