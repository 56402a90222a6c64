"""Shared test set-up: offline hub, tiny pipelines built in code (tests/fixtures)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["tests.fixtures.plugin"]


def pytest_sessionfinish(session, exitstatus):
    session.config._sora_exitstatus = int(exitstatus)


def pytest_unconfigure(config):
    """End the process at once when the bpy module was loaded: its C++ static destructors
    deadlock at interpreter exit (a condition variable destroyed while bpy's own delayed-close
    thread waits on it), which would hang the test run after the summary."""
    import sys

    if "bpy" in sys.modules and hasattr(config, "_sora_exitstatus"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._sora_exitstatus)
