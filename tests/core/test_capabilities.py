"""Fitting requests to a model's declared rules: near misses round with a notice, impossible ones fail."""

import pytest

from sora_core.capabilities import FAMILIES, fit_request
from sora_core.errors import SoraError


@pytest.mark.parametrize("family, asked, expected", [
    ("wan-t2v", 48, 49), ("wan-t2v", 49, 49), ("wan-t2v", 51, 49), ("wan-t2v", 52, 53),
    ("ltx", 100, 97), ("ltx", 97, 97), ("ltx", 12, 9),
])
def test_frame_rule_rounding(family, asked, expected):
    caps = FAMILIES[family]
    frames, note = caps.fit_frames(asked)
    assert frames == expected
    assert (frames - caps.frame_offset) % caps.frame_multiple == 0
    assert bool(note) == (asked != expected)
    if note:
        assert caps.frame_rule() in note


def test_size_rounds_to_multiple_with_notice():
    fitted = fit_request(FAMILIES["ltx"], "generate", 49, 500, 300)
    assert (fitted.width, fitted.height) == (512, 288)
    assert len(fitted.notices) == 2 and "multiple of 32" in fitted.notices[0]


@pytest.mark.parametrize("mode, frames, w, h, field", [
    ("generate", 1000, 64, 64, "frames"),
    ("generate", 0, 64, 64, "frames"),
    ("generate", 49, 8, 64, "width"),
    ("generate", 49, 64, 99999, "height"),
    ("extend", 49, 64, 64, "mode"),
])
def test_impossible_requests_fail(mode, frames, w, h, field):
    with pytest.raises(SoraError) as info:
        fit_request(FAMILIES["wan-t2v"], mode, frames, w, h)
    assert info.value.field == field and info.value.exit_code == 2


def test_default_frames_follow_the_rule():
    for caps in FAMILIES.values():
        n = caps.default_frames
        assert caps.min_frames <= n <= caps.max_frames
        assert (n - caps.frame_offset) % caps.frame_multiple == 0
