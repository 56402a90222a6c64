"""ShotSpec: round trip, validation messages that name the field, schema, output-root safety."""

import json

import pytest

from sora_core.errors import SoraError
from sora_core.output_dir import resolve_output_dir
from sora_core.spec import ShotSpec
from sora_core.spec_schema import json_schema


def spec(**kw):
    data = {"prompt": "a red ball moving left"}
    data.update(kw)
    return data


def test_round_trip_through_a_file(tmp_path):
    s = ShotSpec.from_dict(spec(mode="interpolate", frames=16, seed=7,
                                inputs={"keyframes": [{"path": "a.png", "index": 0},
                                                      {"path": "b.png", "index": 15}]}))
    s.save(tmp_path / "shot.json")
    again = ShotSpec.load(tmp_path / "shot.json")
    assert again == s
    assert again.inputs.keyframes[1].index == 15
    assert [p.name for p in tmp_path.iterdir()] == ["shot.json"]   # no temp file left


def test_hash_ignores_output_but_not_prompt():
    a = ShotSpec.from_dict(spec())
    b = ShotSpec.from_dict(spec(output={"dir": "elsewhere", "name": "other"}))
    c = ShotSpec.from_dict(spec(prompt="a blue ball"))
    assert a.spec_hash() == b.spec_hash() != c.spec_hash()


@pytest.mark.parametrize("data, field, words", [
    ({"mode": "dance"}, "mode", ["generate", "animate", "extend", "interpolate", "restyle"]),
    ({"frames": "many"}, "frames", ["integer"]),
    ({"frames": 0}, "frames", ["1"]),
    ({"width": -16}, "width", ["integer"]),
    ({"colour": {}}, "colour", ["allowed fields", "color"]),
    ({"inputs": {"strenght": 0.5}}, "inputs.strenght", ["strength"]),
    ({"mode": "animate"}, "inputs.image", ["still"]),
    ({"mode": "extend"}, "inputs.frames", ["sequence"]),
    ({"mode": "extend", "inputs": {"frames": "x.####.exr", "direction": "sideways"}},
     "inputs.direction", ["forward", "backward"]),
    ({"mode": "restyle", "inputs": {"frames": "x", "strength": 1.5}}, "inputs.strength", ["0.0", "1.0"]),
    ({"mode": "interpolate", "inputs": {"keyframes": [{"path": "a", "index": 0}]}},
     "inputs.keyframes", ["two"]),
    ({"runtime": {"memory": "lots"}}, "runtime.memory", ["model_cpu_offload", "vae_tiling"]),
    ({"runtime": {"device": "tpu"}}, "runtime.device", ["cuda"]),
    ({"output": {"name": "../evil"}}, "output.name", ["letters"]),
    ({"prompt": ""}, "prompt", ["prompt"]),
])
def test_bad_values_name_the_field_and_what_is_allowed(data, field, words):
    with pytest.raises(SoraError) as info:
        ShotSpec.from_dict(spec(**data))
    err = info.value
    assert err.code == "invalid_input" and err.exit_code == 2
    assert err.field == field
    for word in words:
        assert word in str(err)


def test_malformed_json_is_invalid_input_with_position():
    with pytest.raises(SoraError) as info:
        ShotSpec.from_json('{"prompt": "x",}', source="shot.json")
    assert info.value.exit_code == 2
    assert "shot.json" in str(info.value) and "line 1" in str(info.value)


def test_missing_spec_file_is_not_found(tmp_path):
    with pytest.raises(SoraError) as info:
        ShotSpec.load(tmp_path / "nope.json")
    assert info.value.exit_code == 3


@pytest.mark.parametrize("out_dir", ["../outside", "shots/../../outside", "/etc/sora"])
def test_output_dir_may_not_escape_the_root(tmp_path, out_dir):
    s = ShotSpec.from_dict(spec(output={"dir": out_dir, "name": "shot"}))
    with pytest.raises(SoraError) as info:
        resolve_output_dir(s, tmp_path / "root")
    assert info.value.field == "output.dir" and info.value.exit_code == 2


def test_output_dir_inside_the_root_is_fine(tmp_path):
    root = tmp_path / "root"
    inside = ShotSpec.from_dict(spec(output={"dir": str(root / "a" / "b"), "name": "shot"}))
    assert resolve_output_dir(inside, root) == (root / "a" / "b").resolve()
    assert resolve_output_dir(ShotSpec.from_dict(spec()), root) == (root / "shots" / "shot").resolve()


def test_schema_lists_every_top_level_key_and_mode():
    schema = json_schema()
    json.dumps(schema)
    props = schema["properties"]
    for key in ("mode", "prompt", "negative_prompt", "model", "seed", "steps", "guidance", "width",
                "height", "frames", "fps", "inputs", "output"):
        assert key in props
    assert props["mode"]["enum"] == ["generate", "animate", "extend", "interpolate", "restyle", "control", "hdr"]
    assert props["inputs"]["properties"]["keyframes"]["items"]["required"] == ["path", "index"]
    assert schema["additionalProperties"] is False


def test_the_schema_holds_the_ranges_validation_enforces():
    """One table feeds both: a farm tool checking specs with the schema refuses what the worker would."""
    jsonschema = pytest.importorskip("jsonschema")
    from sora_core.spec import RANGES
    schema = json_schema()
    for path, (_kind, low, high) in RANGES.items():
        node = schema
        for key in path.split("."):
            node = node["properties"][key]
            node = node["anyOf"][0] if "anyOf" in node else node
            node = node["items"] if node.get("type") == "array" else node
        assert (node["minimum"], node["maximum"]) == (low, high), path
    for bad in ({"steps": 0}, {"steps": 1001}, {"inputs": {"strength": 1.5}}, {"fps": 0.0},
                {"output": {"first_frame": -1}}, {"inputs": {"control_kind": "normals"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"mode": "generate", "prompt": "p", **bad}, schema)
        with pytest.raises(SoraError):
            ShotSpec.from_dict({"mode": "generate", "prompt": "p", **bad})
    jsonschema.validate({"mode": "generate", "prompt": "p", "steps": 1000}, schema)
