"""Property-based: the spec parser and validator, and sequence names, never fail other than with a
SoraError (exit 2). Bounded examples so it runs in CI."""

import json
import string

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from sora_core.errors import SoraError  # noqa: E402
from sora_core.frames.sequence import fill_pattern, frame_name, gaps, _NUMBERED, _pattern_regex  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402

KEYS = ["mode", "prompt", "negative_prompt", "model", "seed", "steps", "guidance", "width", "height",
        "frames", "fps", "duration", "prompt_schedule", "passes", "inputs", "output", "color", "runtime",
        "version", "dir", "name", "first_frame", "overwrite", "frames", "image", "keyframes", "path",
        "index", "start", "device", "dtype", "memory", "strength", "direction", "context", "strict", "x"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["generate", "extend", "cpu", "x\n", "a\x00b",
                                                           "shots/a", "..", "cuda:0"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_every_document_validates_or_is_invalid_input(doc):
    try:
        ShotSpec.from_dict(doc)
    except SoraError as err:
        assert err.code == "invalid_input" and err.exit_code == 2


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_json_text_validates_or_is_invalid_input(text):
    try:
        ShotSpec.from_json(text)
    except SoraError as err:
        assert err.exit_code == 2
    except RecursionError:      # pragma: no cover - json's own limit, not reachable at this size
        pytest.fail("deep JSON")


NAME_CHARS = string.ascii_letters + string.digits + "._-"


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=30), st.sampled_from(["generate"]))
def test_names_with_control_characters_or_separators_are_refused(name, mode):
    doc = {"prompt": "p", "output": {"name": name}}
    try:
        spec = ShotSpec.from_dict(doc)
    except SoraError as err:
        assert err.exit_code == 2
        return
    assert not any(c in spec.output.name for c in "/\\\n\r\t\x00") and spec.output.name == name


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=20).filter(lambda s: s[0].isalnum()),
       st.integers(0, 10**7), st.sampled_from([".exr", ".png", ".jpg", ".tif"]))
def test_sequence_names_round_trip(prefix, number, ext):
    name = frame_name(prefix, number, ext)
    assert fill_pattern(f"{prefix}.####{ext}", number) == name
    m = _pattern_regex(f"{prefix}.####{ext}").match(name)
    assert m and int(m["num"]) == number
    n = _NUMBERED.match(name)
    assert n and int(n["num"]) == number


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40), st.integers(0, 10**6))
def test_pattern_parsing_never_raises(text, number):
    fill_pattern(text, number)
    _pattern_regex(text)
    _NUMBERED.match(text)


@given(st.sets(st.integers(0, 200), max_size=40))
def test_gaps_are_exactly_the_missing_numbers(numbers):
    missing = gaps(numbers)
    if numbers:
        assert set(missing) | numbers == set(range(min(numbers), max(numbers) + 1))
        assert not set(missing) & numbers
    else:
        assert missing == []


@pytest.mark.parametrize("doc, field", [
    ({"prompt": "p", "output": {"name": "x\n"}}, "output.name"),
    ({"prompt": "p", "runtime": {"device": "cpu\n"}}, "runtime.device"),
    ({"prompt": "p", "output": {"dir": "shots/a\x00b"}}, "output.dir"),
    ({"prompt": "a\x00b"}, "prompt"),
    ({"prompt": "p", "model": "tiny\n"}, "model"),
    ({"prompt": "p", "negative_prompt": "x\x07"}, "negative_prompt"),
])
def test_control_characters_are_refused_naming_the_field(doc, field):
    with pytest.raises(SoraError) as err:
        ShotSpec.from_dict(doc)
    assert err.value.exit_code == 2 and err.value.field == field


def test_a_prompt_keeps_its_line_breaks_and_tabs():
    spec = ShotSpec.from_dict({"prompt": "a red ball\n\tmoving right"})
    assert json.loads(spec.to_json())["prompt"] == "a red ball\n\tmoving right"
