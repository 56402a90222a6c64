"""The Sora Shots node graph's logic, without bpy: order, what a node asks for, results.

``sora_blender/nodes/graph.py`` imports only ``sora_core``; it is loaded from its file here so
that no bpy (which the add-on package imports) is needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sora_core.capabilities import FAMILIES
from sora_core.errors import SoraError

PATH = Path(__file__).resolve().parents[2] / "sora_blender" / "nodes" / "graph.py"
spec = importlib.util.spec_from_file_location("sora_node_graph", PATH)
graph = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = graph               # dataclasses look their module up
spec.loader.exec_module(graph)
CAPS = FAMILIES["ltx"]


def test_dependency_order_puts_every_node_after_its_inputs():
    upstream = {"Prompt": [], "Generate": ["Prompt"], "Extend": ["Prompt", "Generate"],
                "Output": ["Extend"], "Lonely": []}
    assert graph.dependency_order(upstream, ["Output"]) == ["Prompt", "Generate", "Extend", "Output"]
    everything = graph.dependency_order(upstream)
    assert set(everything) == set(upstream)
    for name, ups in upstream.items():
        assert all(everything.index(u) < everything.index(name) for u in ups)


def test_a_cycle_and_a_missing_node_are_named():
    with pytest.raises(SoraError, match="cycle"):
        graph.dependency_order({"A": ["B"], "B": ["A"]}, ["A"])
    with pytest.raises(SoraError) as err:
        graph.dependency_order({"A": []}, ["Nope"])
    assert err.value.code == "not_found" and "'Nope'" in err.value.message and "A" in err.value.hint


def test_requests_follow_the_inputs():
    shot = {"pattern": "/s/gen.####.exr", "first": 1, "last": 16}
    ext = graph.request("extend", CAPS, 0, 1, 0, shot=shot)
    assert ext.first_frame is None and ext.available == 16      # the worker continues the numbering
    assert ext.frames == CAPS.max_frames - CAPS.default_context
    assert graph.request("extend", CAPS, 8, 1, 4, shot=shot).frames == 8
    assert graph.request("restyle", CAPS, 0, 1, shot=shot).frames == 16
    a, b = {"pattern": "a.####.exr", "first": 1, "last": 5}, {"pattern": "b.####.exr", "first": 12, "last": 20}
    fill = graph.request("interpolate", CAPS, 0, 1, a=a, b=b)
    assert (fill.frames, fill.first_frame) == (8, 5)            # frame 5 through frame 12
    gen = graph.request("generate", CAPS, 0, 101)
    assert (gen.frames, gen.first_frame) == (CAPS.default_frames, 101)


def test_job_results_and_status_icons():
    assert graph.job_result("", "x.####.exr", 1, 4) is None
    r = graph.job_result("/s/v001", "x.####.exr", 17, 8)
    assert r == {"pattern": str(Path("/s/v001") / "x.####.exr"), "first": 17, "last": 24, "dir": "/s/v001"}
    assert graph.status_icon("done v001") == "CHECKMARK" and graph.status_icon("running") == "SORTTIME"
    assert graph.status_icon("") == "NONE"
