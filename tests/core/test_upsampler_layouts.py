"""An LTX-2 latent upsampler in each layout the hub ships, recognised and loaded from a tiny folder:
``latent_upsampler/`` (Lightricks/LTX-2, diffusers' conversion script), ``spatial_upsampler/`` with
the older config key names (fal's packs), and an ``LTX2LatentUpsamplePipeline`` folder
(``upsample_pipeline/`` of the conversion script, or a separate upsampler repo put beside the weights)."""

import json
import shutil
from pathlib import Path

import pytest

from sora_core.upsampler_rules import find_upsampler
from sora_core.models_index import inspect_model


def _layout(base: str, tmp_path: Path, kind: str) -> Path:
    """A copy of the tiny upsampled LTX-2 folder with its upsampler moved into layout ``kind``."""
    folder = tmp_path / kind
    shutil.copytree(base, folder)
    model = folder / "latent_upsampler"
    if kind == "spatial_upsampler":                # fal: another name, a plain x2, the older key names
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        shutil.rmtree(model)
        model = folder / "spatial_upsampler"
        LTX2LatentUpsamplerModel(in_channels=8, mid_channels=32, num_blocks_per_stage=1,
                                 use_rational_resampler=False).save_pretrained(model, safe_serialization=True)
        config = json.loads((model / "config.json").read_text())
        config["rational_resampler"] = config.pop("use_rational_resampler")
        config["spatial_scale"] = config.pop("rational_spatial_scale")
        (model / "config.json").write_text(json.dumps(config))
    elif kind in ("upsample_pipeline", "latent_upsampler_pipeline"):
        from diffusers import AutoencoderKLLTX2Video, LTX2LatentUpsamplePipeline
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        upsampler = LTX2LatentUpsamplerModel.from_pretrained(str(model))
        vae = AutoencoderKLLTX2Video.from_pretrained(str(folder / "vae"))
        shutil.rmtree(model)
        name = "upsample_pipeline" if kind == "upsample_pipeline" else "latent_upsampler"
        LTX2LatentUpsamplePipeline(vae=vae, latent_upsampler=upsampler).save_pretrained(
            folder / name, safe_serialization=True)
    return folder


@pytest.mark.parametrize("kind, found", [
    ("latent_upsampler", "latent_upsampler"),
    ("spatial_upsampler", "spatial_upsampler"),
    ("upsample_pipeline", "upsample_pipeline/latent_upsampler"),
    ("latent_upsampler_pipeline", "latent_upsampler/latent_upsampler"),
])
def test_each_hub_layout_is_listed_as_two_stage_and_its_upsampler_loads(tiny_ltx2_upsampled, tmp_path,
                                                                         kind, found):
    torch = pytest.importorskip("torch")
    from sora_core.backends import load_backend
    from sora_core.spec import Runtime

    folder = _layout(tiny_ltx2_upsampled, tmp_path, kind)
    assert find_upsampler(folder).relative_to(folder).as_posix() == found
    caps = inspect_model(str(folder)).capabilities
    assert caps.upsampler == 2, caps.notes
    assert caps.describe().endswith("; two-stage x2 with its latent upsampler")
    backend = load_backend(folder, Runtime())
    assert backend.identity["upsampler"] == f"{found} x2"
    model = backend._upsampler().latent_upsampler
    out = model(torch.zeros(1, 8, 2, 2, 3))
    assert tuple(out.shape) == (1, 8, 2, 4, 6)         # x2 in space, as its config says


def test_a_folder_without_an_upsampler_or_with_one_outside_it_is_one_stage(tiny_ltx2, tiny_ltx2_upsampled,
                                                                          tmp_path):
    assert find_upsampler(Path(tiny_ltx2)) is None and inspect_model(tiny_ltx2).capabilities.upsampler == 0
    folder = tmp_path / "linked"
    shutil.copytree(tiny_ltx2, folder)
    (folder / "spatial_upsampler").symlink_to(Path(tiny_ltx2_upsampled) / "latent_upsampler")
    assert find_upsampler(folder) is None                 # a link leading out of the model folder
    pipeline = tmp_path / "wrong" / "upsample_pipeline"
    shutil.copytree(tiny_ltx2, pipeline.parent)
    pipeline.mkdir()
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": "LTX2Pipeline"}))
    assert find_upsampler(pipeline.parent) is None        # not an upsample pipeline
