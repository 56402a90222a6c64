"""Farm benchmark: the same batch of 8 shots on one Ray node and on two (one CPU each), in one run.

    python bench/farm.py                      # the bundled tinyworld model
    python bench/farm.py --model PATH --steps 20 --shots 8

Prints the speed-up of two nodes over one (target >= 1.6x) and the scheduling overhead per
shot (target <= 0.3 s): with one node the shots run one after another, so the batch time minus
the time the workers spent on the jobs (their own ``total_s``), divided by the shots, is what the
farm adds per shot (Ray dispatch, the worker round trip, the event relay, the driver's polling).
Each configuration is warmed up first (a worker per node, model loaded), and the cold times are
printed too. Ray listens on loopback only, inside a fresh network namespace when ``unshare``
works here (``--no-netns`` to skip that).

On a machine whose cores are shared (other jobs running), two one-CPU nodes compete for the
same cores as everything else: read the speed-up together with the load average it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_SPEEDUP, TARGET_OVERHEAD = 1.6, 0.3


def _in_netns(argv: list[str]) -> int | None:
    """Re-run this script as PID 1 of new network/PID namespaces with only loopback up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
           'ip link set lo up && exec "$0" "$@"', sys.executable, __file__, *argv, "--no-netns"]
    return subprocess.call(cmd)




def _batch(work: Path, name: str, model: str, n: int, steps: int | None):
    """``n`` shots named ``<name><i>``, all in one output root: the nodes' warm workers run there."""
    from sora_core.farm.batch import load_batch
    specs = work / f"specs-{name}"
    specs.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        spec = {"mode": "generate", "prompt": "a red ball moving right", "model": model, "seed": i,
                "output": {"dir": f"shots/{name}{i}", "name": f"{name}{i}"}}
        if steps:
            spec["steps"] = steps
        (specs / f"{name}{i}.json").write_text(json.dumps(spec))
    return load_batch([str(specs)], str(work / "out"))


def _run(executor, batch) -> dict:
    from sora_core.farm.scheduler import BatchRunner
    executor.output_root = str(batch.output_root)
    t0 = time.perf_counter()
    summary = BatchRunner(batch, executor, retries=0, retry_delay=0).run()
    wall = time.perf_counter() - t0
    bad = [s["id"] for s in summary["shots"] if s["status"] != "done"]
    if bad:
        raise SystemExit(f"shots did not finish: {bad}: {[s['error'] for s in summary['shots'] if s['error']]}")
    jobs = [h["job_seconds"] or 0.0 for s in summary["shots"] for h in s["history"]]
    # the same shots on the same nodes: one warm worker per node, the model already loaded
    tasks = [h["seconds"] or 0.0 for s in summary["shots"] for h in s["history"]]
    nodes = sorted({s["node"] for s in summary["shots"]})
    return {"wall": wall, "job_sum": sum(jobs), "task_sum": sum(tasks), "n": len(jobs), "nodes": nodes,
            "task_overhead": (sum(tasks) - sum(jobs)) / len(jobs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tinyworld", help="model name or folder (default: the bundled tinyworld)")
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps per shot (default: the model's)")
    parser.add_argument("--no-netns", action="store_true", help="do not enter a network namespace")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not args.no_netns:
        code = _in_netns(sys.argv[1:])
        if code is not None:
            return code
        print("note: no network namespace here (unshare/ip missing or not permitted); Ray binds 127.0.0.1")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster
    from sora_core.farm.ray_runner import RayExecutor

    work = Path(tempfile.mkdtemp(prefix="sora-farm-bench-"))
    model = args.model
    steps = args.steps
    node_args = dict(num_cpus=1, resources={"sora_slot": 1}, include_dashboard=False, node_ip_address="127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args=node_args)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="warning")
    executor = RayExecutor(str(work))
    figures: dict = {"model": model, "steps": steps, "shots": args.shots, "cpus": os.cpu_count()}
    try:
        print(f"model: {model}; steps {steps or 'default'}; {args.shots} shots of 16 frames; "
              f"{os.cpu_count()} CPUs here, load average {os.getloadavg()[0]:.2f}")
        t = time.perf_counter()
        _run(executor, _batch(work, "warm1", model, 1, steps))
        figures["cold_start_1_node_s"] = time.perf_counter() - t
        one = _run(executor, _batch(work, "one", model, args.shots, steps))

        cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        t = time.perf_counter()
        _run(executor, _batch(work, "warm2", model, 2, steps))     # the new node's worker and model
        figures["cold_start_2_nodes_s"] = time.perf_counter() - t
        two = _run(executor, _batch(work, "two", model, args.shots, steps))
    finally:
        executor.close()
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    speedup = one["wall"] / two["wall"]
    overhead = (one["wall"] - one["job_sum"]) / one["n"]
    overhead2 = (two["wall"] * 2 - two["job_sum"]) / two["n"]
    figures.update(one_node_s=one["wall"], two_nodes_s=two["wall"], speedup=speedup,
                   job_s_mean_one=one["job_sum"] / one["n"], job_s_mean_two=two["job_sum"] / two["n"],
                   overhead_per_shot_s=overhead, idle_per_shot_two_nodes_s=overhead2,
                   nodes_used_two=len(two["nodes"]), load_average=os.getloadavg()[0])
    print(f"cold start (first shot, worker spawn + model load): 1 node {figures['cold_start_1_node_s']:.2f} s, "
          f"second node {figures['cold_start_2_nodes_s']:.2f} s")
    print(f"1 node : {one['wall']:7.2f} s for {one['n']} shots; worker time per shot {one['job_sum'] / one['n']:.3f} s")
    print(f"2 nodes: {two['wall']:7.2f} s for {two['n']} shots on {len(two['nodes'])} nodes; worker time per "
          f"shot {two['job_sum'] / two['n']:.3f} s")
    print(f"speed-up 2 nodes / 1 node: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x) "
          f"{'PASS' if speedup >= TARGET_SPEEDUP else 'MISS'}")
    print(f"scheduling overhead per shot (1 node, batch time - worker time): {overhead:.3f} s "
          f"(target <= {TARGET_OVERHEAD} s) {'PASS' if overhead <= TARGET_OVERHEAD else 'MISS'}")
    print(f"  of which inside the task (spec checks, worker round trip, event relay): {one['task_overhead']:.3f} s")
    print(f"2 nodes: slot time not spent in a worker job, per shot: {overhead2:.3f} s (overhead + tail imbalance)")
    print(f"load average at the end: {figures['load_average']:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
