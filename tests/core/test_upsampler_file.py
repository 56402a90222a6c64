"""LTX-2's latent upsampler as the original single file (``ltx-2-spatial-upscaler-x2-1.0.safetensors``:
ltx-core's tensor names, its config in the file's metadata), dropped into the model folder or named
by the shot (``--upsampler``, e.g. from a ComfyUI ``latent_upscale_models/``), and the files that are
refused: a temporal upscaler, something that is not an upsampler, a pickle, a model that is not LTX-2."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sora_core.errors import SoraError
from sora_core.models_index import inspect_model
from sora_core.upsampler_rules import file_scale, find_upsampler
from tests.core.test_families import sora

NAME = "ltx-2-spatial-upscaler-x2-1.0.safetensors"
# how ltx-core's release names its config (keys and defaults differ from diffusers')
ORIGINAL = {"_class_name": "LatentUpsampler", "in_channels": 8, "mid_channels": 32, "num_blocks_per_stage": 1,
            "dims": 3, "spatial_upsample": True, "temporal_upsample": False, "spatial_scale": 2.0,
            "rational_resampler": True}


def original_file(upsampled_folder: str, path: Path, drop=(), **config) -> Path:
    """The tiny folder's upsampler saved as Lightricks ship it: one file, config in its metadata
    (``drop``: tensors left out)."""
    from safetensors.torch import save_file

    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    model = LTX2LatentUpsamplerModel.from_pretrained(str(Path(upsampled_folder) / "latent_upsampler"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k not in drop}, str(path),
              metadata={"config": json.dumps({**ORIGINAL, **config})})
    return path


def header_only(path: Path, names, config: dict | None) -> Path:
    """A small safetensors file with ``names`` (tiny tensors) and the config, made with numpy."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: np.zeros((2, 2), np.float32) for n in names}, str(path),
              metadata={"config": json.dumps(config)} if config is not None else None)
    return path


def test_a_single_file_in_the_folder_makes_two_stages_with_its_weights(tiny_ltx2, tiny_ltx2_upsampled, tmp_path):
    torch = pytest.importorskip("torch")
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    from sora_core.backends import load_backend
    from sora_core.spec import Runtime

    folder = tmp_path / "ltx2"
    shutil.copytree(tiny_ltx2, folder)
    file = original_file(tiny_ltx2_upsampled, folder / "latent_upsampler" / NAME)
    assert find_upsampler(folder) == file
    caps = inspect_model(str(folder)).capabilities
    assert caps.upsampler == 2 and caps.describe().endswith("; two-stage x2 with its latent upsampler")
    backend = load_backend(folder, Runtime())
    assert backend.identity["upsampler"] == f"latent_upsampler/{NAME} x2"
    loaded = backend._upsampler().latent_upsampler
    reference = LTX2LatentUpsamplerModel.from_pretrained(str(Path(tiny_ltx2_upsampled) / "latent_upsampler"))
    x = torch.randn(1, 8, 2, 2, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(loaded.float()(x), reference(x), atol=1e-5)    # the file's weights, exactly


def test_the_cli_takes_an_upsampler_file_from_a_comfy_tree_for_a_base_without_one(tiny_ltx2, tiny_ltx2_upsampled,
                                                                                 tmp_path):
    pytest.importorskip("diffusers")
    from sora_core.frames.exr import read_image

    comfy = tmp_path / "ComfyUI" / "models"
    file = original_file(tiny_ltx2_upsampled, comfy / "latent_upscale_models" / NAME,
                         drop=("upsampler.blur_down.kernel",))      # a buffer the model builds itself
    listed = json.loads(sora("models", "--models-dir", comfy, "--json", "--files", cwd=tmp_path).stdout)
    assert [(f["role"], f["label"]) for f in listed] == [("upsampler", "LTX-2 latent upsampler, spatial x2")]
    assert inspect_model(tiny_ltx2).capabilities.upsampler == 0
    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2, "--upsampler", file, "--frames", "9",
               "--width", "128", "--height", "64", "--steps", "2", "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "s/manifest.json").read_text())
    assert manifest["spec"]["components"]["upsampler"] == str(file)
    assert manifest["model"]["upsampler"] == f"{NAME} x2"
    assert manifest["model"]["components"]["upsampler"]["path"] == str(file)
    assert any(n.startswith("two stages: made at 64x32") for n in manifest["notices"])
    frames = sorted((tmp_path / "s").glob("shot.*.exr"))
    assert len(frames) == 9 and read_image(frames[0]).shape[:2] == (64, 128)
    wrong = original_file(tiny_ltx2_upsampled, tmp_path / "wrong.safetensors", mid_channels=64)
    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2, "--upsampler", wrong, "--frames", "9",
               "--width", "128", "--height", "64", "--steps", "2", "--out", "w", cwd=tmp_path)
    assert out.returncode == 2 and "does not fit the upsampler its config describes" in out.stderr, out.stderr
    assert not list(tmp_path.glob("w/*.exr"))


def test_unusable_upsampler_files_are_refused_naming_what_is_wrong(tiny_ltx2, tiny_wan_t2v, tmp_path):
    temporal = header_only(tmp_path / "ltx-2-temporal-upscaler-x2-1.0.safetensors",
                           ["initial_conv.weight", "final_conv.weight"],
                           {**ORIGINAL, "spatial_upsample": False, "temporal_upsample": True})
    other = header_only(tmp_path / "wan.safetensors", ["patch_embedding.weight"], None)
    with pytest.raises(SoraError, match="whole scale"):
        file_scale(str(temporal))
    with pytest.raises(SoraError, match="is not a latent upsampler"):
        file_scale(str(other))
    base = ["generate", "--prompt", "a red ball", "--frames", "9", "--dry-run"]
    cases = [(tiny_ltx2, temporal, "whole scale"), (tiny_ltx2, other, "is not a latent upsampler"),
             (tiny_ltx2, tmp_path / "up.pt", "pickle"), (tiny_wan_t2v, temporal, "for LTX-2 models")]
    (tmp_path / "up.pt").write_bytes(b"not loaded")
    for model, file, said in cases:
        out = sora(*base, "--model", model, "--upsampler", file, cwd=tmp_path)
        assert out.returncode == 2 and said in out.stderr and "components.upsampler" in out.stderr, out.stderr
    folder = tmp_path / "ltx2"                  # in the folder, a temporal file is noted: one stage
    shutil.copytree(tiny_ltx2, folder)
    (folder / "latent_upsampler").mkdir()
    shutil.copy(temporal, folder / "latent_upsampler")
    caps = inspect_model(str(folder)).capabilities
    assert caps.upsampler == 0
    assert any(n.startswith(f"latent_upsampler/{temporal.name}: sora runs") for n in caps.notes), caps.notes
