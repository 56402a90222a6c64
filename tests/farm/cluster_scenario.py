"""A real two-node Ray cluster running a batch of bundled-model shots, with faults.

Run by ``test_ray_cluster.py`` inside a network and PID namespace that the test creates
(``unshare --net --pid --fork --mount-proc``, then ``ip link set lo up``): every address is
loopback, and when this process (PID 1 there) ends, nothing it started can outlive it.

    python cluster_scenario.py MODEL_DIR WORK_DIR   -> WORK_DIR/result.json

1. head + a second node (one CPU and one ``sora_slot`` each); a batch of two-pass generate
   shots, an extend that depends on one of them, a shot whose worker is killed on its first
   attempt (exit 75: retried), one with an ambiguous input (exit 2: not retried). The second
   node dies (its raylet and the shot's worker are killed) while a shot is in its second pass;
   that shot is run again on the head and resumes after pass 1.
2. ``sora farm`` (the CLI) on the same cluster with one more, longer shot, cancelled by SIGTERM
   while that shot runs (exit 130); the other shots are already complete and are skipped.
3. The same command again: it resumes and finishes (exit 0).
Then the cluster is shut down and every process in the namespace but this one must be gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

MODEL, WORK = sys.argv[1], Path(sys.argv[2])
ROOT = WORK / "out"
SPECS = WORK / "specs"
result: dict = {"events": [], "phases": {}}


def spec(name: str, **extra) -> dict:
    data = {"mode": "generate", "prompt": "a red ball moving right", "model": MODEL, "steps": 4,
            "seed": len(name), "output": {"dir": f"shots/{name}", "name": name}}
    data.update(extra)
    return data


def write_specs() -> None:
    SPECS.mkdir(parents=True, exist_ok=True)
    # two passes each, slow enough (150 steps of the tiny model) that a node dies mid-shot
    shots = {f"g{i}": spec(f"g{i}", frames=28, steps=150, passes={"length": 16, "overlap": 4})
             for i in range(4)}
    shots["ext"] = spec("ext", mode="extend", frames=8, inputs={"frames": "shots/g0/g0.####.exr"},
                        output={"dir": "shots/ext", "name": "g0"})
    shots["flaky"] = spec("flaky", steps=12)
    amb = ROOT / "inputs" / "ambiguous"      # two sequences in one folder: invalid input (exit 2)
    amb.mkdir(parents=True, exist_ok=True)
    for name in ("a.0001.exr", "b.0001.exr"):
        (amb / name).write_bytes(b"not an exr")
    shots["bad"] = spec("bad", mode="extend", inputs={"frames": "inputs/ambiguous"})
    for name, data in shots.items():
        (SPECS / f"{name}.json").write_text(json.dumps(data))


def phase1(cluster, node2) -> None:
    from sora_core.farm.batch import load_batch
    from sora_core.farm.ray_runner import RayExecutor
    from sora_core.farm.scheduler import BatchRunner

    batch = load_batch([str(SPECS)], str(ROOT))
    node2_id = node2.node_id[:8]
    state = {"flaky_killed": None, "node_killed": None, "victim": None}
    pids: dict = {}

    def kill_node2(shot: str, worker_pid: int) -> None:
        t = time.monotonic()
        try:        # power loss: the shot's worker dies with the node, wherever it was
            os.kill(worker_pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
        cluster.remove_node(node2, allow_graceful=False)
        state["node_killed"] = {"shot": shot, "took_s": round(time.monotonic() - t, 2)}

    def on_event(event: dict) -> None:
        result["events"].append(event)
        kind, shot = event.get("event"), event.get("shot")
        if kind == "started":
            pids[shot] = event["worker_pid"]
        if kind == "started" and shot == "flaky" and event.get("attempt") == 1 and not state["flaky_killed"]:
            os.kill(event["worker_pid"], signal.SIGKILL)     # the worker dies mid-shot: exit 75
            state["flaky_killed"] = event["worker_pid"]
        if (kind == "progress" and event.get("phase") == "denoise" and event.get("pass") == 2
                and shot.startswith("g") and node2_id in str(event.get("node")) and state["victim"] is None):
            state["victim"] = shot      # pass 1 is on disk, pass 2 is being made
            threading.Thread(target=kill_node2, args=(shot, pids.get(shot)), daemon=True).start()

    executor = RayExecutor(str(ROOT))
    t0 = time.monotonic()
    try:
        summary = BatchRunner(batch, executor, retries=2, retry_delay=0.0, on_event=on_event).run()
    finally:
        executor.close()
    result["phases"]["1"] = {"summary": summary, "state": state, "placement": executor.placement,
                             "seconds": round(time.monotonic() - t0, 2), "node2": node2_id}


def cli(args: list[str], cancel_on=None) -> dict:
    cmd = [sys.executable, "-m", "sora_core.cli", "farm", str(SPECS), str(WORK / "late.json"),
           "--output-root", str(ROOT), "--json", "--retry-delay", "0", "--cancel-grace", "5", *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, sent = [], False
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        events.append(event)
        if cancel_on and not sent and cancel_on(event):
            proc.send_signal(signal.SIGTERM)
            sent = True
    proc.wait(timeout=120)
    return {"rc": proc.returncode, "events": events, "stderr": proc.stderr.read()[-3000:],
            "seconds": round(time.monotonic() - t0, 2), "cancel_sent": sent}


def leftovers() -> list[str]:
    me = os.getpid()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != me:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if "State:\tZ" in status:
                try:
                    os.waitpid(int(pid), os.WNOHANG)   # PID 1 reaps orphans
                except ChildProcessError:
                    pass
                continue
            out.append(f"{pid} {cmd[:160]}")
    return out


def main() -> None:
    import ray
    from ray.cluster_utils import Cluster

    write_specs()
    # the shot phase 2 cancels and phase 3 resumes: two passes, so a resume starts after pass 1
    (WORK / "late.json").write_text(json.dumps({"shots": [{"id": "late", "spec": spec(
        "late", frames=28, steps=300, passes={"length": 16, "overlap": 4})}]}))
    args = dict(num_cpus=1, resources={"sora_slot": 1}, include_dashboard=False, node_ip_address="127.0.0.1")
    t0 = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={
        **args, "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                                   "health_check_timeout_ms": 1000}})
    node2 = cluster.add_node(**args)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="warning")
    result["cluster_start_s"] = round(time.monotonic() - t0, 2)
    result["nodes"] = len([n for n in ray.nodes() if n["Alive"]])
    try:
        phase1(cluster, node2)
        ray.shutdown()          # the CLI connects as its own driver
        result["phases"]["2"] = cli(["--ray-address", cluster.address], cancel_on=lambda e: (
            e.get("shot") == "late" and e.get("event") == "progress" and e.get("phase") == "denoise"
            and e.get("pass") == 2))
        result["phases"]["3"] = cli(["--ray-address", cluster.address])
    finally:
        ray.shutdown()
        cluster.shutdown()
    deadline = time.monotonic() + 20
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    result["leftover_processes"] = left
    (WORK / "result.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
