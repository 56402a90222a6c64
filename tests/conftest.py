"""Shared test set-up: offline hub, tiny pipelines built in code (tests/fixtures)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["tests.fixtures.plugin"]
