"""A shot with a sound track (LTX-2) lands in the sequencer as frames plus a sound strip."""

import numpy as np

from sora_core.frames.audio import wav_bytes
from sora_core.frames.exr import write_exr


def test_a_shot_with_sound_gets_a_sound_strip_and_a_new_version_replaces_it(scene, tmp_path):
    from sora_blender.compositor import add_sequencer_strip

    folder = tmp_path / "shot"
    folder.mkdir()
    for n in range(1, 4):
        write_exr(folder / f"ball.{n:04d}.exr", np.full((16, 16, 3), 0.2, np.float32), {})
    (folder / "ball.wav").write_bytes(wav_bytes(np.zeros((2000, 2), np.float32), 16000))
    done = {"dir": str(folder), "pattern": "ball.####.exr", "first_frame": 1, "frames": 3,
            "audio": str(folder / "ball.wav")}
    strip = add_sequencer_strip(scene, done, "ball")
    strips = getattr(scene.sequence_editor, "strips", None) or scene.sequence_editor.sequences
    sound = strips.get("ball sound")
    assert sound is not None and sound.type == "SOUND" and sound.channel == strip.channel + 1
    assert int(sound.frame_start) == 1
    add_sequencer_strip(scene, {**done, "audio": None}, "ball")     # a version without sound
    assert strips.get("ball sound") is None
