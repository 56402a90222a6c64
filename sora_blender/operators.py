"""Operators: generate/cancel, seed, models, worker set-up and check.

``sora.generate`` never blocks the UI: it starts a task that a ``bpy.app.timers`` timer polls
(``Job.poll()``), and, when invoked from the UI, a pass-through modal handler so Esc cancels.
In background mode (``blender -b``) it runs to completion before returning and prints one
line per progress step.
"""

from __future__ import annotations

import random
import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from sora_core.errors import SoraError

from . import live, models, scene_job, shots, tasks
from .scene_job import scene_key
from .settings import get_prefs
from .worker import service, setup
from .worker.python import same_path, venv_dir, venv_python, worker_python

RUN_ITEMS = [
    ("AUTO", "Auto", "Block in background mode (blender -b), else run in the background of the UI"),
    ("BLOCKING", "Blocking", "Wait for the shot (scripts, farm)"),
    ("TIMER", "Timer", "Return at once; a timer polls the worker"),
]


class _RunShot:
    """What Generate and Resume share: run the scene's job, in the background of the UI (a
    pass-through modal handler, so Esc cancels) or, in background mode, to the end."""

    bl_options = {"REGISTER"}

    run_in: EnumProperty(name="Run", items=RUN_ITEMS, default="AUTO", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        scene = context.scene
        if scene is None or not hasattr(scene, "sora"):
            return False
        task = tasks.get_task(scene_key(scene))
        return task is None or task.finished

    def _run(self, scene, spec, root, notices=()):
        blocking = self.run_in == "BLOCKING" or (self.run_in == "AUTO" and bpy.app.background)
        try:
            task = scene_job.run(scene, spec, root, blocking, notices)
        except SoraError as err:
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
        task = tasks.get_task(self._key)
        if task is None or task.finished:
            context.window_manager.event_timer_remove(self._timer)
            return {"FINISHED"}
        if event.type == "ESC" and event.value == "PRESS":
            task.cancel()
            self.report({"INFO"}, "Cancelling the shot")
        return {"PASS_THROUGH"}


class SORA_OT_generate(_RunShot, bpy.types.Operator):
    """Generate the shot in the worker (Blender stays responsive; Esc cancels)"""

    bl_idname = "sora.generate"
    bl_label = "Generate"

    def _start(self, context):
        scene = context.scene
        try:
            spec, root, fitted = shots.scene_spec(scene)
        except SoraError as err:
            scene_job.set_error(live.job(scene), err)
            self.report({"ERROR"}, str(err))
            return None
        return self._run(scene, spec, root, fitted.notes)


class SORA_OT_resume(_RunShot, bpy.types.Operator):
    """Continue the stopped long shot in its folder, after its last finished pass"""

    bl_idname = "sora.resume"
    bl_label = "Resume"

    @classmethod
    def poll(cls, context):
        return super().poll(context) and live.job(context.scene).resume is not None

    def _start(self, context):
        spec, root = live.job(context.scene).resume
        return self._run(context.scene, spec, root)


class SORA_OT_cancel(bpy.types.Operator):
    """Stop the running shot at the next step: the unfinished pass's frames are removed, a long
shot's finished passes are kept (shown in the compositor; Resume continues after them)"""

    bl_idname = "sora.cancel"
    bl_label = "Cancel"

    key: StringProperty(default="", options={"SKIP_SAVE"})

    def execute(self, context):
        keys = [self.key] if self.key else [scene_key(context.scene)]
        if self.key == "*":
            keys = list(tasks.active_tasks())
        found = False
        for key in keys:
            task = tasks.get_task(key)
            if task is not None and not task.finished:
                task.cancel()
                found = True
        if not found:
            self.report({"INFO"}, "Nothing is running")
            return {"CANCELLED"}
        live.job(context.scene).message = "cancelling"
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
        models = models.scan_models(force=True)
        self.report({"INFO"}, f"{len(models)} models: " + ", ".join(m.name for m in models))
        return {"FINISHED"}


class SORA_OT_check_worker(bpy.types.Operator):
    """Start the worker Python and report its versions, device and GPU memory"""

    bl_idname = "sora.check_worker"
    bl_label = "Check Worker"

    def execute(self, context):
        problem = setup.setup_problem()
        if problem:                 # a half-made set-up venv: say so instead of checking another Python
            lines = setup.setup_problem_lines(problem)
            setup.set_worker_report(lines)
            if bpy.app.background:
                for line in lines:
                    print(f"sora: {line}", flush=True)
            self.report({"ERROR"}, f"{lines[0]} ({lines[1]})")
            return {"CANCELLED"}
        python = worker_python()
        if bpy.app.background:
            print(f"sora: Checking {python}", flush=True)
            info = setup.check_worker(python)
            lines = setup.describe_check(info)
            setup.set_worker_report(lines)
            for line in lines:
                print(f"sora: {line}", flush=True)
            if "error" in info and "torch" not in info:
                self.report({"ERROR"}, lines[0])
                return {"CANCELLED"}
            return {"FINISHED"}
        setup.start_check(python)
        self.report({"INFO"}, f"Checking {python} (see the preferences)")
        return {"FINISHED"}


class SORA_OT_setup_worker(bpy.types.Operator):
    """Make a worker environment (a venv in the extension's user folder) with sora-core[worker]:
torch, diffusers, OpenImageIO. Downloads about 1 GB with pip; progress shows in the preferences"""

    bl_idname = "sora.setup_worker"
    bl_label = "Set Up Worker"

    def execute(self, context):
        prefs = get_prefs(context)
        folder = venv_dir()
        if not bpy.app.online_access and "--no-index" not in (prefs.pip_args or ""):
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network). Allow it, "
                        "or add '--no-index --find-links <wheel folder>' to Extra pip arguments")
            return {"CANCELLED"}

        result = {}

        def done(ok):       # main thread (setup.drain_reports); Worker Python stays as it was:
            result["ok"] = ok       # empty, it picks the venv once the venv is marked ready

        running = service.current_python()
        if running and same_path(running, venv_python(folder)):
            service.stop_worker()       # do not reinstall packages under a running worker
        try:
            thread = setup.start_setup(sys.executable, folder, prefs.pip_args, done)
        except SoraError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if bpy.app.background:
            thread.join()               # each step was printed as it ran
            setup.drain_reports()     # the report lines, then done(ok)
            if not result.get("ok"):
                errors = [ln for ln in setup.worker_report_lines() if ln.startswith("Error")]
                self.report({"ERROR"}, "Set Up Worker failed: "
                            + (errors[-1].removeprefix("Error: ") if errors else "see the log above"))
                return {"CANCELLED"}
        else:
            self.report({"INFO"}, f"Setting up the worker in {folder} (progress in the preferences)")
        return {"FINISHED"}


classes = (SORA_OT_generate, SORA_OT_resume, SORA_OT_cancel, SORA_OT_randomize_seed, SORA_OT_rescan_models,
           SORA_OT_check_worker, SORA_OT_setup_worker)
