"""The frame path at production resolution: its cost against the floor of the work, how much of a
long shot happens outside the pipeline call, and whether memory stays flat as a shot grows.

1. Ratio (target <= 1.3 at both sizes): 48 display-referred frames at 1280x720 and 1920x1080,
   Blender's config, views Standard and AgX. The project's path is ``sora ingest`` of a PNG
   sequence (read -> colour -> write -> hash, the code generated frames take, manifest included).
   The floor, measured in the same run: OCIO's own CPU processor (the config's inverse view) and
   OpenImageIO half ZIP EXR writes on a pool of ``os.cpu_count()`` threads, frames already in
   memory, nothing else. Also: the baked AgX inverse against the solver (round-trip error).
2. Outside the pipeline (target <= 10 %): a 4-pass long shot of a tiny random Wan at 256x256,
   in process; the wall time after the model load minus the time inside the pipeline calls,
   over that wall time.
3. Flat memory (target <= 1.2): peak RSS of a 1080p 4-pass shot over a 1-pass one, each in a
   fresh process. A tiny Wan at 1080p takes minutes per pass on a CPU, so these shots run the
   real runner with a stand-in backend that returns a pass of frames after a fixed time per
   frame (0.25 s, a fast GPU model): everything after the pipeline call is the real frame path.

    python bench/frame_path.py [--frames 48] [--repeats 3] [--skip-longshot] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sora_core.frames.color import ViewTransform, blender_config_path, ocio  # noqa: E402

SIZES = ((1280, 720), (1920, 1080))
VIEWS = ("Standard", "AgX")


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def source_frames(folder: Path, w: int, h: int, count: int, view: ViewTransform) -> list[np.ndarray]:
    """What a generator exports: smooth scenes with a moving object, through the view, 8-bit."""
    import OpenImageIO as oiio

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(count):
        scene = np.empty((h, w, 3), np.float32)
        scene[..., 0] = 0.02 + 0.6 * xx / w
        scene[..., 1] = 0.05 + 0.3 * yy / h
        scene[..., 2] = 0.1 + 0.05 * np.sin(xx / 37 + i / 5)
        r = (xx - (0.2 + 0.6 * i / count) * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.1 * h) ** 2
        scene[r] = (2.5, 0.4, 0.2)
        disp = np.round(view.to_display(scene) * 255) / 255
        oiio.ImageBuf(disp.astype(np.float32)).write(str(folder / f"src.{i + 1:04d}.png"))
        frames.append(disp.astype(np.float32))
    return frames


def floor_seconds(frames: list[np.ndarray], config: str, view: str, out: Path) -> float:
    """OCIO CPU processor + OIIO half ZIP writes on a pool of os.cpu_count() threads."""
    import OpenImageIO as oiio

    lib = ocio()
    cfg = lib.Config.CreateFromFile(config)
    proc = cfg.getProcessor(lib.DisplayViewTransform(src="scene_linear", display="sRGB", view=view),
                            lib.TRANSFORM_DIR_INVERSE).getDefaultCPUProcessor()
    out.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> None:
        a = frames[i].copy()
        proc.applyRGB(a.reshape(-1, 3))
        h, w, _ = a.shape
        spec = oiio.ImageSpec(w, h, 3, "half")
        spec.attribute("compression", "zip")
        o = oiio.ImageOutput.create("openexr")
        o.open(str(out / f"f.{i:04d}.exr"), spec)
        o.write_image(a)
        o.close()

    t = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(one, range(len(frames))))
    return time.perf_counter() - t


def project_seconds(src: Path, config: str, view: str, out: Path) -> tuple[float, dict]:
    from sora_core.ingest import ingest

    t = time.perf_counter()
    manifest = ingest(src, out, "shot", {"config": config, "view": view})
    seconds = time.perf_counter() - t
    return seconds, json.loads(manifest.read_text())["timings"]


def baked_against_solver(frame: np.ndarray, view: ViewTransform) -> dict:
    crop = frame[::4, ::4]          # the solver takes seconds a frame: a quarter-size sample
    t = time.perf_counter()
    baked = view.to_linear(crop)
    t_baked = time.perf_counter() - t
    t = time.perf_counter()
    exact = view.to_linear(crop, exact=True)
    t_exact = time.perf_counter() - t
    e_baked = np.abs(view.to_display(baked) - crop).max(-1)
    e_exact = np.abs(view.to_display(exact) - crop).max(-1)
    rel = (np.abs(baked - exact) / np.maximum(exact, 1e-3)).max(-1)
    return {"baked_roundtrip_mean": float(e_baked.mean()), "baked_roundtrip_p99": float(np.percentile(e_baked, 99)),
            "baked_roundtrip_max": float(e_baked.max()), "solver_roundtrip_max": float(e_exact.max()),
            "scene_rel_diff_median": float(np.median(rel)), "scene_rel_diff_p99": float(np.percentile(rel, 99)),
            "solver_ms_per_720p_frame": 1000 * t_exact * 16, "baked_ms_per_720p_frame": 1000 * t_baked * 16}


def ratios(count: int, tmp: Path, repeats: int) -> dict:
    config = str(blender_config_path())
    report = {}
    for w, h in SIZES:
        for view_name in VIEWS:
            view = ViewTransform(config, "sRGB", view_name)
            view.describe()                       # solve/load a baked inverse before timing
            src = tmp / f"src_{w}_{view_name}"
            frames = source_frames(src, w, h, count, view)
            floors, runs = [], []
            for rep in range(repeats):      # interleaved; the fastest of each (the machine is shared)
                floors.append(floor_seconds(frames, config, view_name, tmp / f"floor_{w}_{view_name}_{rep}"))
                runs.append(project_seconds(src, config, view_name, tmp / f"ours_{w}_{view_name}_{rep}"))
            floor = min(floors)
            ours, timings = min(runs, key=lambda run: run[0])
            key = f"{w}x{h} {view_name}"
            report[key] = {"floor_s": round(floor, 3), "project_s": round(ours, 3),
                           "ratio": round(ours / floor, 3), "ms_per_frame": round(1000 * ours / count, 1),
                           "split_thread_s": {k: timings[k] for k in ("load_s", "color_s", "write_s")},
                           "load": load_avg()}
            print(f"{key:18} floor {floor:6.2f} s  project {ours:6.2f} s  ratio {ours / floor:5.2f}  "
                  f"({1000 * ours / count:5.1f} ms/frame; load {load_avg()})", flush=True)
            if view_name == "AgX" and w == 1280:
                report["agx_baked_vs_solver"] = baked_against_solver(frames[count // 2], view)
                print("  AgX baked inverse vs solver:", json.dumps(report["agx_baked_vs_solver"]), flush=True)
    return report


def longshot(tmp: Path) -> dict:
    from sora_core.backends.cache import BackendCache
    from sora_core.execute import run_shot
    from sora_core.spec import ShotSpec
    from tests.fixtures.tiny_models import build_wan_vace

    model = build_wan_vace(tmp / "tiny-wan")
    spec = ShotSpec.from_dict({"prompt": "a red ball moving right", "model": str(model), "width": 256,
                               "height": 256, "frames": 53, "steps": 4, "seed": 1,
                               "passes": {"length": 17, "overlap": 4}, "output": {"dir": "long", "name": "long"}})
    done = run_shot(spec, tmp, BackendCache(), lambda e: None)
    t = done["timings"]
    wall = t["total_s"] - t["model_load_s"]
    inside = t["denoise_s"] + t["decode_s"]
    share = (wall - inside) / wall
    out = {"passes": len(t["passes"]), "wall_after_load_s": round(wall, 3), "pipeline_s": round(inside, 3),
           "outside_share": round(share, 4), "color_write_thread_s": round(t["color_s"] + t["write_s"], 3),
           "load": load_avg()}
    print(f"long shot 4 passes 256x256: {100 * share:.1f} % of {wall:.2f} s outside the pipeline "
          f"(colour+write {t['color_s'] + t['write_s']:.2f} thread-s, mostly hidden; load {load_avg()})", flush=True)
    return out


MEMORY_CHILD = r"""
import sys, time, json
import numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from sora_core.backends.base import Backend
from sora_core.capabilities import FAMILIES
from sora_core.execute import run_shot
from sora_core.spec import ShotSpec

class StandIn(Backend):
    # returns a pass of display frames after 0.25 s a frame, like a fast GPU model
    capabilities = FAMILIES["wan-vace"]
    identity = {"name": "stand-in", "family": "wan-vace", "hash": "", "pipeline": "StandIn"}
    def run(self, req, on_step):
        for s in range(1, req.steps + 1):
            time.sleep(0.25 * req.frames / req.steps)
            on_step(s, req.steps)
        rng = np.random.default_rng(req.seed)
        base = rng.uniform(0.1, 0.9, (1, req.height, req.width, 3)).astype(np.float32)
        return np.repeat(base, req.frames, 0)

class Cache:
    loads = 0
    def get(self, *a):
        return StandIn()

passes = int(sys.argv[3])
spec = ShotSpec.from_dict({"prompt": "p", "model": sys.argv[2], "width": 1920, "height": 1072, "steps": 2,
                           "frames": 17 + 13 * (passes - 1), "passes": {"length": 17, "overlap": 4},
                           "output": {"dir": "mem", "name": "m"}})
done = run_shot(spec, sys.argv[4], Cache(), lambda e: None)
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"passes": done["passes"], "frames": done["frames"], "peak_mb": int(peak) / 1024}))
"""


def memory(tmp: Path) -> dict:
    from tests.fixtures.tiny_models import build_wan_vace

    model = tmp / "tiny-wan"
    if not model.is_dir():
        build_wan_vace(model)
    out = {}
    for passes in (1, 4):
        root = tmp / f"mem{passes}"
        root.mkdir()
        proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT), str(model), str(passes), str(root)],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        out[passes] = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = out[4]["peak_mb"] / out[1]["peak_mb"]
    print(f"peak RSS 1080p: 1 pass {out[1]['peak_mb']:.0f} MB, 4 passes {out[4]['peak_mb']:.0f} MB, "
          f"ratio {ratio:.2f} (load {load_avg()})", flush=True)
    return {"one_pass_mb": round(out[1]["peak_mb"]), "four_pass_mb": round(out[4]["peak_mb"]),
            "ratio": round(ratio, 3), "load": load_avg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3, help="runs of floor and path each, fastest kept")
    ap.add_argument("--skip-longshot", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", help="also write the report to this file")
    args = ap.parse_args()
    if blender_config_path() is None:
        raise SystemExit("needs bpy (Blender's config.ocio): pip install 'sora-core[test]'")
    print(f"{os.cpu_count()} CPUs, load {load_avg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sora-frame-path-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("SORA_CACHE_DIR", str(tmp / "cache"))
        report = {"cpus": os.cpu_count(), "ratios": ratios(args.frames, tmp, args.repeats)}
        if not args.skip_longshot:
            report["longshot"] = longshot(tmp)
        if not args.skip_memory:
            report["memory"] = memory(tmp)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
