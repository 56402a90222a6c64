"""The Ray executor: one Ray task per shot attempt, each reserving a GPU or a slot.

Placement is Ray's: a task asks for ``num_gpus=1`` when the cluster has GPUs, otherwise for
one unit of a custom resource (``sora_slot`` by default; start nodes with
``ray start --resources '{"sora_slot": 1}'``), otherwise (neither exists) for CPUs only.
Tasks are not retried by Ray (``max_retries=0``): when a node dies, the lost attempt comes back
to the scheduler as exit 75 and is submitted again, so Ray runs it on a node that is alive.
Progress events go from the tasks to a small actor on the driver's node, which the driver
drains; the actor costs no CPU.

Ray is imported here only, and only when a batch runs.
"""

from __future__ import annotations

import os
import time

from .shot_task import execute_shot

DEFAULT_RESOURCE = "sora_slot"


class _Sink:
    """Collects events from every task; the driver drains it a few times a second."""

    def __init__(self):
        self.events: list[dict] = []

    def put(self, events: list[dict]) -> int:
        self.events.extend(events)
        return len(events)

    def drain(self) -> list[dict]:
        out, self.events = self.events, []
        return out


def _shot_task(shot_id: str, spec_data: dict, output_root: str, options: dict, attempt: int, sink):
    """Body of the Ray task (runs on a node): the shot through the warm worker client."""
    import ray

    ctx = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()}/{ctx.get_node_id()[:8]}"
    buffer: list[dict] = []
    last = [time.monotonic()]

    def flush(wait: bool) -> None:
        if not buffer:
            return
        batch = buffer[:]
        buffer.clear()
        ref = sink.put.remote(batch)
        if wait:
            try:
                ray.get(ref, timeout=10)
            except Exception:   # progress is best effort; the result still comes back
                pass
        last[0] = time.monotonic()

    def emit(event: dict) -> None:
        buffer.append(event)
        urgent = event.get("event") in ("started", "done", "error", "loading")
        if urgent or time.monotonic() - last[0] > 0.25:
            flush(wait=urgent)

    try:
        return execute_shot(shot_id, spec_data, output_root, options, attempt, node, emit)
    finally:
        flush(wait=True)


class RayExecutor:
    """Runs shots as Ray tasks on the cluster at ``address`` (or a local Ray when None)."""

    def __init__(self, output_root: str, address: str | None = None, resource: str = DEFAULT_RESOURCE,
                 gpus: str = "auto", cpus_per_shot: float = 1.0, slots: int | None = None,
                 python: str | None = None, models_dirs=(), cancel_grace: float = 10.0,
                 keep_warm: float = 120.0, runtime_env: dict | None = None, export: dict | None = None):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        self.output_root = str(output_root)
        self.owns_ray = False
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="warning",
                          configure_logging=True)
            if runtime_env:
                kwargs["runtime_env"] = runtime_env
            if address:
                ray.init(address=address, **kwargs)
            else:       # a local cluster: one slot per GPU, or ``slots`` shots at a time on the CPU
                import multiprocessing
                local_slots = slots or 1
                kwargs["resources"] = {resource: local_slots}
                kwargs["num_cpus"] = max(multiprocessing.cpu_count(), int(local_slots * cpus_per_shot))
                kwargs["_node_ip_address"] = "127.0.0.1"     # a local Ray listens on loopback only
                ray.init(**kwargs)
            self.owns_ray = True
        total = ray.cluster_resources()
        self.notices: list[str] = []
        use_gpu = total.get("GPU", 0) >= 1 if gpus == "auto" else gpus == "yes"
        if use_gpu:
            placement = {"num_gpus": 1, "num_cpus": cpus_per_shot}
            self.placement = "GPU"
        elif total.get(resource, 0) >= 1:
            placement = {"num_cpus": cpus_per_shot, "resources": {resource: 1}}
            self.placement = resource
        else:
            placement = {"num_cpus": max(cpus_per_shot, 1)}
            self.placement = "CPU"
            self.notices.append(f"the cluster has no GPU and no {resource!r} resource: one shot per "
                                f"{max(cpus_per_shot, 1):g} CPU (start nodes with --resources "
                                f"'{{\"{resource}\": 1}}' to choose)")
        # max_calls=0: Ray would otherwise retire a GPU task's process after one shot, and with it
        # the warm worker and its loaded model (the GPU memory is the sora worker's, not Ray's)
        self._remote = ray.remote(max_calls=0, max_retries=0, **placement)(_shot_task)
        here = ray.get_runtime_context().get_node_id()
        self._sink = ray.remote(_Sink).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        self.options = {"python": python, "models_dirs": list(models_dirs), "cancel_grace": cancel_grace,
                        "keep_warm": keep_warm, **(export or {})}     # export: farm.deliver's options
        self._refs: dict = {}           # ObjectRef -> (shot_id, attempt)
        self._by_shot: dict = {}        # shot_id -> ObjectRef
        self._cancelled_at: dict = {}   # shot_id -> time of the gentle cancel

    @property
    def capacity(self) -> float:
        total = self.ray.cluster_resources()
        return total.get("GPU" if self.placement == "GPU" else self.placement, 0)

    def submit(self, shot, attempt: int) -> None:
        ref = self._remote.remote(shot.id, shot.spec.to_dict(), self.output_root, self.options,
                                  attempt, self._sink)
        self._refs[ref] = (shot.id, attempt)
        self._by_shot[shot.id] = ref

    def poll(self, timeout: float) -> list[tuple[str, int, dict]]:
        ray = self.ray
        self._force_overdue()
        if not self._refs:
            time.sleep(timeout)
            return []
        refs = list(self._refs)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out = []
        for ref in ready:
            shot_id, attempt = self._refs.pop(ref)
            if self._by_shot.get(shot_id) is ref:
                del self._by_shot[shot_id]
            self._cancelled_at.pop(shot_id, None)
            out.append((shot_id, attempt, self._result(ref, shot_id, attempt)))
        return out

    def _result(self, ref, shot_id: str, attempt: int) -> dict:
        ex = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except ex.TaskCancelledError:
            return {"exit_code": 130, "code": "cancelled", "error": "cancelled: the batch was cancelled"}
        except ex.RayTaskError as exc:      # the task itself raised: a bug, not worth a retry
            return {"exit_code": 1, "code": "internal", "error": f"internal: {exc}"}
        except ex.RayError as exc:          # the worker or its node died: run it again elsewhere
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return {"exit_code": 75, "code": "node_lost",
                    "error": f"node_lost: {type(exc).__name__}: {first[:300]}"}

    def drain_events(self) -> list[dict]:
        try:
            return self.ray.get(self._sink.drain.remote(), timeout=10)
        except Exception:
            return []

    def cancel(self, shot_id: str) -> None:
        """Ask the task to stop (the worker stops at the next step); force it after the grace."""
        ref = self._by_shot.get(shot_id)
        if ref is None:
            return
        try:
            self.ray.cancel(ref, force=False)
        except Exception:
            pass
        self._cancelled_at.setdefault(shot_id, time.monotonic())

    def _force_overdue(self) -> None:
        grace = float(self.options.get("cancel_grace", 10.0)) + 5
        for shot_id, since in list(self._cancelled_at.items()):
            ref = self._by_shot.get(shot_id)
            if ref is not None and time.monotonic() - since > grace:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:
                    pass
                self._cancelled_at[shot_id] = float("inf")

    def close(self) -> None:
        try:
            self.ray.kill(self._sink)
        except Exception:
            pass
        if self.owns_ray:
            self.ray.shutdown()
