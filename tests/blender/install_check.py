"""Run by test_packaging.py in a fresh Python (own HOME): install the built zip, enable, disable.

Prints one JSON line ``SORA_INSTALL {...}`` with what it saw.
"""

import json
import sys

import bpy  # noqa: E402  (bpy before addon_utils)
import addon_utils  # noqa: E402,F401

MOD = "bl_ext.user_default.sora_blender"


def handler_counts():
    out = {}
    for name in dir(bpy.app.handlers):
        value = getattr(bpy.app.handlers, name)
        if not name.startswith("_") and isinstance(value, list):
            out[name] = len(value)
    return out


def sora_types():
    return sorted(n for n in dir(bpy.types) if n.startswith("SORA_") or n.startswith("Sora"))


import atexit  # noqa: E402

report = {"before_types": sora_types()}
atexit_before = atexit._ncallbacks()
before = handler_counts()
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default",
                                                  enable_on_install=True)
report["install"] = sorted(result)
report["enabled"] = MOD in bpy.context.preferences.addons
report["scene_prop"] = hasattr(bpy.types.Scene, "sora")
report["types"] = sora_types()
report["panels"] = [n for n in ("SORA_PT_compositor", "SORA_PT_sequencer", "SORA_PT_view3d")
                    if hasattr(bpy.types, n)]
report["generate_poll"] = bpy.ops.sora.generate.poll()
report["model_default"] = bpy.context.scene.sora.model
import sora_core  # noqa: E402
report["sora_core"] = sora_core.__file__
report["torch_imported"] = "torch" in sys.modules
prefs = bpy.context.preferences.addons[MOD].preferences
report["prefs_device"] = prefs.device
settings, tasks, service = (sys.modules[MOD + n] for n in (".settings", ".tasks", ".worker.service"))
report["user_dir"] = str(settings.user_dir())
tick = tasks.tick
bpy.ops.preferences.addon_disable(module=MOD)
report["after_disable_enabled"] = MOD in bpy.context.preferences.addons
report["after_scene_prop"] = hasattr(bpy.types.Scene, "sora")
report["after_types"] = sora_types()
report["timer_left"] = bpy.app.timers.is_registered(tick)
report["handlers_changed"] = {k: (before.get(k), v) for k, v in handler_counts().items() if before.get(k) != v}
n = atexit._ncallbacks()
atexit.unregister(service.stop_worker)      # removes it if disabling had left it behind
report["atexit_left"] = n - atexit._ncallbacks()
print("SORA_INSTALL " + json.dumps(report), flush=True)
