"""Model files from the command line and a spec, and a ComfyUI models folder listed by `sora models`."""

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from tests.core.test_cli import sora  # noqa: E402
from tests.fixtures import model_files as mf  # noqa: E402

SMALL = ["--frames", "5", "--width", "32", "--height", "32", "--steps", "2", "--prompt", "a red ball"]


@pytest.fixture(scope="module")
def comfy_root(tiny_wan_t2v, tmp_path_factory):
    """A ComfyUI models/ tree: a transformer in ComfyUI keys, a GGUF, a LoRA, a VAE, a pickle."""
    root = tmp_path_factory.mktemp("comfy") / "models"
    state = mf.transformer_state(tiny_wan_t2v)
    mf.save(mf.wan_original_keys(state, comfy=True), root / "diffusion_models" / "wan_tiny_bf16.safetensors",
            torch.bfloat16)
    mf.write_gguf(mf.wan_original_keys(state), root / "unet" / "wan_tiny-Q8_0.gguf")
    mf.write_fp8(mf.wan_original_keys(state, comfy=True), root / "diffusion_models" / "wan_tiny_fp8_scaled.safetensors",
                 scaled=True)
    mf.comfy_lora(state, root / "loras" / "style.safetensors")
    (root / "vae").mkdir()
    shutil.copy(next((Path(tiny_wan_t2v) / "vae").glob("*.safetensors")), root / "vae" / "wan_vae.safetensors")
    torch.save({"x": torch.zeros(1)}, root / "loras" / "old.ckpt")
    return root


def frame_hashes(shot: Path) -> list[str]:
    return [f["sha256"] for f in json.loads((shot / "manifest.json").read_text())["frames"]]


def test_single_file_gguf_and_lora_from_flags_then_the_saved_spec(tiny_wan_t2v, comfy_root, tmp_path):
    files = ["--transformer", comfy_root / "diffusion_models" / "wan_tiny_bf16.safetensors",
             "--lora", f"{comfy_root / 'loras' / 'style.safetensors'}@0.7"]
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, *files, "--out", "a", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["model"]["components"]["transformer"]["path"].endswith("wan_tiny_bf16.safetensors")
    assert manifest["model"]["loras"][0]["strength"] == 0.7
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, *files, "--out", "b",
               "--save-spec", tmp_path / "shot.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    spec = json.loads((tmp_path / "shot.json").read_text())
    assert spec["components"]["transformer"].endswith("wan_tiny_bf16.safetensors")
    assert spec["loras"] == [{"path": str(comfy_root / "loras" / "style.safetensors"), "strength": 0.7,
                              "target": "all"}]
    out = sora("run", tmp_path / "shot.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert frame_hashes(tmp_path / "b") == frame_hashes(tmp_path / "a")
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, "--transformer",
               comfy_root / "unet" / "wan_tiny-Q8_0.gguf", "--out", "q8", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(frame_hashes(tmp_path / "q8")) == 5


@pytest.mark.parametrize("flag, name", [("--transformer", "wan.pth"), ("--lora", "style.bin")])
def test_pickle_files_are_refused_before_any_worker(tiny_wan_t2v, tmp_path, flag, name):
    (tmp_path / name).write_bytes(b"\x80\x04pickle")
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, flag, tmp_path / name, "--out", "p", cwd=tmp_path)
    assert out.returncode == 2 and "pickle" in out.stderr and "safetensors" in out.stderr
    assert not (tmp_path / "p").exists()


def test_a_spec_path_gets_the_same_checks(tiny_wan_t2v, tmp_path):
    spec = {"mode": "generate", "prompt": "x", "model": tiny_wan_t2v, "frames": 5, "width": 32,
            "height": 32, "steps": 1, "components": {"transformer": str(tmp_path / "missing.gguf")}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    out = sora("run", tmp_path / "s.json", cwd=tmp_path)
    assert out.returncode == 3 and "components.transformer" in out.stderr
    spec["components"] = {"vae": str(tmp_path / "vae.ckpt")}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    out = sora("run", tmp_path / "s.json", cwd=tmp_path)
    assert out.returncode == 2 and "pickle" in out.stderr


def test_a_wrong_architecture_exits_2_with_no_frames(tiny_ltx, comfy_root, tmp_path):
    out = sora("generate", "--model", tiny_ltx, "--frames", "9", "--width", "32", "--height", "32",
               "--steps", "1", "--prompt", "x", "--transformer",
               comfy_root / "diffusion_models" / "wan_tiny_bf16.safetensors", "--out", "w", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "does not fit the base" in out.stderr and "Wan T2V" in out.stderr
    assert not list(tmp_path.rglob("*.exr"))


def test_models_lists_a_comfy_tree_with_what_each_file_is(tiny_wan_t2v, comfy_root, tmp_path):
    roots = ["--models-dir", Path(tiny_wan_t2v).parent, "--models-dir", comfy_root]
    out = sora("models", *roots, "--json", "--files", cwd=tmp_path)
    files = {Path(f["path"]).name: f for f in json.loads(out.stdout)}
    assert files["wan_tiny_bf16.safetensors"]["label"].startswith("Wan T2V")
    assert "bf16" in files["wan_tiny_bf16.safetensors"]["label"]
    assert Path(tiny_wan_t2v).name in files["wan_tiny_bf16.safetensors"]["pairs"]
    assert "Q8_0" in files["wan_tiny-Q8_0.gguf"]["label"] and files["wan_tiny-Q8_0.gguf"]["pairs"]
    assert files["wan_tiny_fp8_scaled.safetensors"]["label"].endswith(", fp8 scaled")
    assert files["style.safetensors"]["label"] == "Wan LoRA rank 2, 6 modules (ComfyUI keys)"
    assert files["old.ckpt"]["problem"].startswith("refused")
    assert files["wan_vae.safetensors"]["role"] == "vae"
    text = sora("models", *roots, cwd=tmp_path).stdout
    line = next(x for x in text.splitlines() if "wan_tiny_bf16.safetensors: Wan T2V" in x)
    assert Path(tiny_wan_t2v).name in line.partition("fits: ")[2].split(", ")   # other bases may fit too


def test_a_gguf_transformer_with_two_loras_from_the_cli(tiny_wan_t2v, comfy_root, tmp_path):
    kohya, _, _ = mf.lora_file(mf.transformer_state(tiny_wan_t2v), tmp_path / "detail_kohya.safetensors", "kohya")
    files = ["--transformer", comfy_root / "unet" / "wan_tiny-Q8_0.gguf",
             "--lora", f"{comfy_root / 'loras' / 'style.safetensors'}@0.7", "--lora", f"{kohya}@0.5"]
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, *files, "--out", "g", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    model = json.loads((tmp_path / "g" / "manifest.json").read_text())["model"]
    assert model["components"]["transformer"]["path"].endswith("wan_tiny-Q8_0.gguf")
    assert [(lo["strength"], lo["modules"]) for lo in model["loras"]] == [(0.7, 6), (0.5, 20)]
    assert len(frame_hashes(tmp_path / "g")) == 5
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, *files, "--out", "g_spec",
               "--save-spec", tmp_path / "g.json", cwd=tmp_path)     # the same shot from its spec
    assert out.returncode == 0 and not (tmp_path / "g_spec").exists(), out.stderr
    out = sora("run", tmp_path / "g.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert frame_hashes(tmp_path / "g_spec") == frame_hashes(tmp_path / "g")


def test_a_lora_matching_nothing_exits_2_with_no_frames(tiny_wan_t2v, tmp_path):
    foreign = mf.save({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(2, 8),
                       "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(8, 2)},
                      tmp_path / "sd15_style.safetensors")
    out = sora("generate", "--model", tiny_wan_t2v, *SMALL, "--lora", foreign, "--out", "n", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "sd15_style.safetensors" in out.stderr and "lora_te_text_model_encoder_layers_0_mlp_fc1" in out.stderr
    assert not list(tmp_path.rglob("*.exr"))
