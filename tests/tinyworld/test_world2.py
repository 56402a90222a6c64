"""TinyWorld 2: entering and leaving, three objects, crossing paths, zoom, continuation clips,
and the detector's new reads, all on the world's own renders (no model)."""

import numpy as np
import pytest

from sora_core.models.tinyworld import detector, world
from sora_core.models.tinyworld.continuation import continuation_clip
from sora_core.models.tinyworld.sampling import TRAIN_WORLD


def _scenes(n, **kw):
    return [world.sample_scene(np.random.default_rng(10**9 + s), **kw) for s in range(n)]


def test_first_world_is_drawn_as_before():
    # captions of the first world's seeds, pinned when the second world was added
    assert world.sample_clip(0)[0] == "a green ball moving right and a purple ball moving left on the ground"
    assert world.sample_clip(2)[0] == "a red ball moving up on the ground, camera panning down"
    for s in range(200):
        scene = world.sample_clip(s)[2]
        assert len(scene.objects) <= 2 and not scene.zoom and scene.start == 0
        assert not any(o.event for o in scene.objects)
        for o in scene.objects:       # every object in view for the whole clip
            assert (world.object_coverage(scene, o).sum((1, 2)) > 100).all()


def test_entering_starts_outside_and_leaving_ends_gone():
    seen = {"entering": 0, "leaving": 0}
    for scene in _scenes(80, events=1.0, max_objects=3):
        for o in scene.objects:
            if not o.event:
                continue
            seen[o.event] += 1
            area = world.object_coverage(scene, o, 40).sum((1, 2))
            if o.event == "entering":
                assert area[0] == 0 and area[world.FRAMES - 1] > 60
            else:
                assert area[0] > 100 and area[world.FRAMES - 1] == 0
                assert (area[world.FRAMES - 1:] == 0).all()      # and stays gone
    assert min(seen.values()) >= 10


def test_a_plain_mover_that_leaves_stays_gone():
    left = 0
    for scene in _scenes(60, n_objects=1, leave=1.0):
        o = scene.objects[0]
        area = world.object_coverage(scene, o, 120).sum((1, 2))
        gone = np.nonzero(area == 0)[0]
        if o.motion.startswith("moving"):
            assert len(gone) and (area[gone[0]:] == 0).all()
            left += int(gone[0] < world.FRAMES)
    assert left >= 3                   # some leave within their own clip


def test_zoom_changes_size_in_the_stated_direction():
    dirs = set()
    for scene in _scenes(40, zoom=1.0, max_objects=3):
        if not scene.zoom:
            continue
        dirs.add(scene.zoom)
        assert scene.camera == "static" and "camera zooming " + scene.zoom in scene.caption()
        for o in scene.objects:
            area = world.object_coverage(scene, o).sum((1, 2))
            ratio = area[-1] / area[0]
            assert (ratio > 2.5) if scene.zoom == "in" else (ratio < 0.4), (scene.caption(), ratio)
            step = area[3:] - area[:-3]            # steadily, not just end to end
            assert (step > 0).all() if scene.zoom == "in" else (step < 0).all()
    assert dirs == {"in", "out"}


def test_three_objects_have_their_own_colours_and_some_paths_cross():
    scenes = _scenes(200, **TRAIN_WORLD)
    assert any(len(s.objects) == 3 for s in scenes)
    crossing = [s for s in scenes if s.extra.get("crossing")]
    assert crossing
    for s in scenes:
        assert len({o.color for o in s.objects}) == len(s.objects)
    # a crossing: two objects' discs overlap on some frame, the later one drawn in front
    s = crossing[0]
    a, b = (world.object_coverage(s, o) for o in s.objects[:2])
    assert ((a > 0.5) & (b > 0.5)).any() or ((a > 0.5) & (world.object_coverage(s, s.objects[-1]) > 0.5)).any()


def test_captions_of_the_new_world_parse_back_with_the_models_vocabulary():
    pytest.importorskip("tokenizers")
    from sora_core.models.tinyworld.pipeline import build_tokenizer
    vocab = build_tokenizer().get_vocab()
    caps = [world.sample_clip(s, **TRAIN_WORLD)[::2] for s in range(300)]
    caps += [continuation_clip(s)[::2][:2] for s in range(100)]
    for cap, scene in caps:
        assert world.unknown_words(cap) == [] and world.unknown_words(cap, vocab) == []
        p = world.parse_caption(cap)
        if scene.extra.get("prompt_switch"):
            continue                  # the caption names only the newcomer
        assert [(o["color"], o["shape"], o["motion"], o["event"]) for o in p["objects"]] == \
               [(o.color, o.shape, o.motion, o.event) for o in scene.objects]
        assert p["zoom"] == scene.zoom and p["camera"] == scene.camera and p["background"] == scene.background
    assert world.parse_caption("a red ball entering from the left")["objects"][0]["motion"] == "moving right"
    assert world.parse_caption("a blue square leaving to the top")["objects"][0] == \
        {"color": "blue", "shape": "square", "motion": "moving up", "event": "leaving"}


def test_continuation_clips_are_later_parts_of_a_trajectory():
    switches = 0
    for s in range(60):
        cap, frames, scene, k = continuation_clip(s)
        assert 4 <= scene.start <= 60 and 2 <= k <= 8 and not scene.zoom
        start, scene.start = scene.start, 0
        long = world.render(scene, start + world.FRAMES)
        assert np.array_equal(long[start:], frames)            # the clip is the trajectory's window
        scene.start = start
        if scene.extra.get("prompt_switch"):
            switches += 1
            new = scene.objects[-1]
            area = world.object_coverage(scene, new).sum((1, 2))
            assert new.event == "entering" and cap.startswith(new.words())
            assert (area[:k] == 0).all() and area[-1] > 0        # out of view while known, then in
    assert 5 <= switches <= 35


def _rate(rows, key):
    v = [r[key] for r in rows if key in r]
    return np.mean(v), len(v)


def test_detector_reads_the_new_world_right():
    rows = []
    for kw in (dict(events=1.0, max_objects=3), dict(zoom=1.0, max_objects=3), dict(n_objects=3, max_objects=3)):
        for scene in _scenes(25, **kw):
            rows.append(detector.score_clip(world.render(scene), scene.caption(),
                                            count=not scene.extra.get("crossing")))
    for key, floor in (("event_ok", 1.0), ("zoom_ok", 1.0), ("three_ok", 0.95), ("count_ok", 0.9)):
        rate, n = _rate(rows, key)
        assert n >= 10 and rate >= floor, (key, rate, n)


def test_long_shot_metrics_on_true_shots_and_a_pop_in():
    scene = world.Scene([world.Obj("green", "square", "moving right", 20.0, 32.0)], "gray")
    shot = world.render(scene, 160)
    assert detector.step_ratio(shot) < 2.0 and detector.pop_ins(shot) == []
    popped = shot.copy()
    popped[60:, 26:39, 26:39] = world.COLORS["green"]        # the square again, mid-frame, from nowhere
    assert detector.step_ratio(popped) > 3.0
    pops = detector.pop_ins(popped)
    assert [p[:2] for p in pops] == [(60, "green")]
    assert detector.pop_ins(popped, allowed={60}) == []
    for s in _scenes(10):                                      # no true shot pops in
        assert detector.pop_ins(world.render(s, 96)) == []


def test_fine_tuning_starts_from_the_shipped_weights_with_the_new_words():
    torch = pytest.importorskip("torch")
    from pathlib import Path
    from sora_core.models.tinyworld import train
    from sora_core.models.tinyworld.pipeline import TinyWorldPipeline
    folder = Path(train.__file__).parent / "weights"
    shipped = TinyWorldPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe = train.build_pipeline(train.MODEL, train.TEXT)
    added = train.init_from(pipe, folder)
    old, new = shipped.tokenizer.get_vocab(), pipe.tokenizer.get_vocab()
    assert set(added) == set(new) - set(old)
    emb, old_emb = pipe.text_encoder.tok.weight, shipped.text_encoder.tok.weight
    for w in ("red", "moving", "left", "ground"):
        assert torch.equal(emb[new[w]], old_emb[old[w]])
    for w in added:
        assert torch.equal(emb[new[w]], old_emb[old[train.NEW_WORD_FROM[w]]])
    a = pipe.transformer.state_dict()
    assert all(torch.equal(a[k], v) for k, v in shipped.transformer.state_dict().items())
