"""Operators: generate/cancel, seed, models, worker set-up and check.

``sora.generate`` never blocks the UI: it starts a task that a ``bpy.app.timers`` timer polls
(``Job.poll()``), and, when invoked from the UI, a pass-through modal handler so Esc cancels.
In background mode (``blender -b``) it runs to completion before returning and prints one
line per progress step.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from sora_core.errors import SoraError

from . import compositor, runtime, shots

RUN_ITEMS = [
    ("AUTO", "Auto", "Block in background mode (blender -b), else run in the background of the UI"),
    ("BLOCKING", "Blocking", "Wait for the shot (scripts, farm)"),
    ("TIMER", "Timer", "Return at once; a timer polls the worker"),
]


def scene_key(scene) -> str:
    return f"scene:{scene.name}"


def _set_error(props, err: SoraError) -> None:
    props.state = "CANCELLED" if err.code == "cancelled" else "ERROR"
    props.last_error = f"[{err.code}] {err.message}"[:1000]
    props.last_hint = err.hint or ""
    props.message = "cancelled" if err.code == "cancelled" else "failed"


def scene_task(scene, spec, root, echo: bool) -> runtime.Task:
    """A one-step task for the scene panel: run ``spec``, import the shot into the compositor."""
    scene_name = scene.name
    shot_dir = Path(root) / spec.output.dir

    def props():
        sc = bpy.data.scenes.get(scene_name)
        return sc.sora if sc else None

    def on_event(event):
        p = props()
        if p is None:
            return
        kind = event.get("event")
        if kind == "progress":
            p.phase, p.step, p.total = event.get("phase", ""), event.get("step", 0), event.get("total", 0)
            p.progress = (p.step / p.total) if p.total else 0.0
            p.message = f"{p.phase} {p.step}/{p.total}"
        elif kind == "loading":
            p.message = f"loading {event.get('model')}"
        elif kind == "notice":
            p.notices = "\n".join(filter(None, [p.notices, event.get("message", "")]))[-2000:]

    def finish(done):
        sc = bpy.data.scenes.get(scene_name)
        if sc is None:
            return
        p = sc.sora
        compositor.import_shot(sc, done, spec.output.name, p.link_composite, p.add_strip)
        p.state, p.progress, p.last_dir = "DONE", 1.0, done["dir"]
        p.message = f"{done['frames']} frames -> {done['dir']}"

    def on_fail(err):
        shots.remove_if_empty(shot_dir)
        p = props()
        if p is not None:
            _set_error(p, err)

    step = runtime.Step(spec.output.name, lambda: (spec, str(root)), finish, on_event, on_fail)
    return runtime.Task(scene_key(scene), [step], echo=echo)


class SORA_OT_generate(bpy.types.Operator):
    """Generate the shot in the worker (Blender stays responsive; Esc cancels)"""

    bl_idname = "sora.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    run_in: EnumProperty(name="Run", items=RUN_ITEMS, default="AUTO", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        scene = context.scene
        if scene is None or not hasattr(scene, "sora"):
            return False
        task = runtime.get_task(scene_key(scene))
        return task is None or task.finished

    def _start(self, context):
        scene = context.scene
        props = scene.sora
        props.last_error = props.last_hint = props.notices = ""
        try:
            spec, root, fitted = shots.scene_spec(scene)
        except SoraError as err:
            _set_error(props, err)
            self.report({"ERROR"}, str(err))
            return None
        props.notices = "\n".join(fitted.notes)
        props.state, props.progress, props.step, props.total = "RUNNING", 0.0, 0, 0
        props.phase, props.message = "starting", "starting worker"
        blocking = self.run_in == "BLOCKING" or (self.run_in == "AUTO" and bpy.app.background)
        task = scene_task(scene, spec, root, echo=blocking)
        try:
            if blocking:
                runtime.run_blocking(task)
            else:
                runtime.start(task)
        except SoraError as err:
            _set_error(props, err)
            self.report({"ERROR"}, str(err))
            return None
        if task.finished and task.state != "done":
            self.report({"ERROR"}, str(task.error))
            return None
        return task

    def execute(self, context):
        task = self._start(context)
        return {"FINISHED"} if task is not None else {"CANCELLED"}

    def invoke(self, context, event):
        if bpy.app.background or self.run_in == "BLOCKING":
            return self.execute(context)
        task = self._start(context)
        if task is None:
            return {"CANCELLED"}
        if task.finished:
            return {"FINISHED"}
        self._key = task.key
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        task = runtime.get_task(self._key)
        if task is None or task.finished:
            context.window_manager.event_timer_remove(self._timer)
            return {"FINISHED"}
        if event.type == "ESC" and event.value == "PRESS":
            task.cancel()
            self.report({"INFO"}, "Cancelling the shot")
        return {"PASS_THROUGH"}


class SORA_OT_cancel(bpy.types.Operator):
    """Stop the running shot (the worker stops at the next step; frames already written are removed)"""

    bl_idname = "sora.cancel"
    bl_label = "Cancel"

    key: StringProperty(default="", options={"SKIP_SAVE"})

    def execute(self, context):
        keys = [self.key] if self.key else [scene_key(context.scene)]
        if self.key == "*":
            keys = list(runtime.active_tasks())
        found = False
        for key in keys:
            task = runtime.get_task(key)
            if task is not None and not task.finished:
                task.cancel()
                found = True
        if not found:
            self.report({"INFO"}, "Nothing is running")
            return {"CANCELLED"}
        context.scene.sora.message = "cancelling"
        return {"FINISHED"}


class SORA_OT_randomize_seed(bpy.types.Operator):
    """Pick a new random seed"""

    bl_idname = "sora.randomize_seed"
    bl_label = "Randomize Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.sora.seed = random.randint(0, 2**31 - 1)
        return {"FINISHED"}


class SORA_OT_rescan_models(bpy.types.Operator):
    """Scan the model folders again"""

    bl_idname = "sora.rescan_models"
    bl_label = "Rescan Models"

    def execute(self, context):
        models = runtime.scan_models(force=True)
        self.report({"INFO"}, f"{len(models)} models: " + ", ".join(m.name for m in models))
        return {"FINISHED"}


class SORA_OT_check_worker(bpy.types.Operator):
    """Start the worker Python and report its versions, device and GPU memory"""

    bl_idname = "sora.check_worker"
    bl_label = "Check Worker"

    def execute(self, context):
        problem = runtime.setup_problem()
        if problem:                 # a half-made set-up venv: say so instead of checking another Python
            lines = runtime.setup_problem_lines(problem)
            runtime.set_worker_report(lines)
            if bpy.app.background:
                for line in lines:
                    print(f"sora: {line}", flush=True)
            self.report({"ERROR"}, f"{lines[0]} ({lines[1]})")
            return {"CANCELLED"}
        python = runtime.worker_python()
        if bpy.app.background:
            print(f"sora: Checking {python}", flush=True)
            info = runtime.check_worker(python)
            lines = runtime.describe_check(info)
            runtime.set_worker_report(lines)
            for line in lines:
                print(f"sora: {line}", flush=True)
            if "error" in info and "torch" not in info:
                self.report({"ERROR"}, lines[0])
                return {"CANCELLED"}
            return {"FINISHED"}
        runtime.start_check(python)
        self.report({"INFO"}, f"Checking {python} (see the preferences)")
        return {"FINISHED"}


class SORA_OT_setup_worker(bpy.types.Operator):
    """Make a worker environment (a venv in the extension's user folder) with sora-core[worker]:
torch, diffusers, OpenImageIO. Downloads about 1 GB with pip; progress shows in the preferences"""

    bl_idname = "sora.setup_worker"
    bl_label = "Set Up Worker"

    def execute(self, context):
        prefs = runtime.get_prefs(context)
        folder = runtime.venv_dir()
        if not bpy.app.online_access and "--no-index" not in (prefs.pip_args or ""):
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network). Allow it, "
                        "or add '--no-index --find-links <wheel folder>' to Extra pip arguments")
            return {"CANCELLED"}

        result = {}

        def done(ok):               # run on the main thread (runtime.drain_reports)
            result["ok"] = ok
            if ok:
                p = runtime.get_prefs()
                if hasattr(p, "bl_rna"):
                    p.worker_python = str(runtime.venv_python(folder))

        try:
            thread = runtime.start_setup(sys.executable, folder, prefs.pip_args, done)
        except SoraError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if bpy.app.background:
            thread.join()               # each step was printed as it ran
            runtime.drain_reports()     # the report lines, then done(ok)
            if not result.get("ok"):
                errors = [ln for ln in runtime.worker_report_lines() if ln.startswith("Error")]
                self.report({"ERROR"}, "Set Up Worker failed: "
                            + (errors[-1].removeprefix("Error: ") if errors else "see the log above"))
                return {"CANCELLED"}
        else:
            self.report({"INFO"}, f"Setting up the worker in {folder} (progress in the preferences)")
        return {"FINISHED"}


classes = (SORA_OT_generate, SORA_OT_cancel, SORA_OT_randomize_seed, SORA_OT_rescan_models,
           SORA_OT_check_worker, SORA_OT_setup_worker)
