"""``sora export``: signed MP4/MOV/PNG/JPEG read back with c2pa-python, tampering named (65)."""

import json
import shutil
from pathlib import Path

import pytest

from .conftest import sora


def sign_flags(chain):
    return ["--sign-cert", chain["chain"], "--sign-key", chain["key"]]


def export(shot, fmt, out, chain, *flags, cwd, env=None):
    return sora("export", shot, "--format", fmt, "--out", out, *sign_flags(chain), *flags, cwd=cwd, env=env)


def verify(path, *flags, cwd):
    out = sora("verify", path, "--json", *flags, cwd=cwd)
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def exported(signed_shot, chain, tmp_path_factory):
    """The signed shot exported once as MP4, MOV, a PNG sequence and a JPEG still."""
    root, shot, _ = signed_shot
    out = tmp_path_factory.mktemp("exported")
    runs = {"mp4": export(shot, "mp4", out / "ball.mp4", chain, "--crf", "20", cwd=root),
            "mov": export(shot, "mov", out / "ball.mov", chain, cwd=root),
            "png": export(shot, "png", out / "png", chain, cwd=root),
            "jpeg": export(shot, "jpeg", out / "f3.jpg", chain, "--frame", "3", cwd=root)}
    for fmt, run in runs.items():
        assert run.returncode == 0, (fmt, run.stderr)
    return out, runs


def _store(path):
    from sora_core.provenance.credentials import read
    return read(path=Path(path))


def test_mp4_and_png_carry_a_valid_c2pa_manifest_whose_parent_is_the_shot(exported, signed_shot):
    import c2pa

    from sora_core.manifest import read_manifest
    from sora_core.provenance.credentials import TRAINED, assertion
    from sora_core.provenance.jws import canonical_sha256

    out, _ = exported
    _, shot, _ = signed_shot
    manifest = read_manifest(shot)
    sidecar = _store_sidecar(shot, manifest)
    for file, mime in ((out / "ball.mp4", "video/mp4"), (out / "png/ball.0004.png", "image/png")):
        with open(file, "rb") as fh, c2pa.Reader(mime, fh) as reader:     # c2pa-python's own Reader
            store = json.loads(reader.json())
            state = reader.get_validation_state()
        assert state == "Valid"        # valid; its signer untrusted (a self-made root)
        active = store["manifests"][store["active_manifest"]]
        assert active["title"] == file.name            # the name it was renamed to, not a temporary's
        labels = {a["label"] for a in active["assertions"]}
        assert {"c2pa.actions.v2", "org.sora.generation", "org.sora.export"} <= labels
        actions = assertion(active, "c2pa.actions.v2")["actions"]
        assert [a["action"] for a in actions][0] == "c2pa.opened"
        assert any(a.get("digitalSourceType") == TRAINED for a in actions)
        assert assertion(active, "org.sora.generation")["prompt"] == "a red ball moving right"
        parent, = [i for i in active["ingredients"] if i["relationship"] == "parentOf"]
        assert parent["metadata"]["sora:manifest_sha256"] == canonical_sha256(manifest)
        assert parent["active_manifest"] == sidecar["active"]["label"]     # the shot's own signed manifest
        shot_claim = store["manifests"][parent["active_manifest"]]
        assert assertion(shot_claim, "c2pa.actions.v2")["actions"][0]["digitalSourceType"] == TRAINED
        done = assertion(active, "org.sora.export")
        assert done["shot_manifest_sha256"] == canonical_sha256(manifest)
        assert done["view"]["display"] == "sRGB - Display"
    mp4 = assertion(_store(out / "ball.mp4")["active"], "org.sora.export")
    assert mp4["crf"] == 20 and len(mp4["frames"]) == 9 and mp4["codec"] == "H.264"


def _store_sidecar(shot, manifest):
    from sora_core.provenance.credentials import read
    from sora_core.provenance.jws import canonical
    return read(data=canonical(manifest), fmt="application/json", sidecar=(shot / "manifest.c2pa").read_bytes())


def test_video_is_tagged_at_the_shots_fps_and_looks_like_its_view_transform(exported, signed_shot):
    import av
    import numpy as np

    from sora_core.frames.color import ViewTransform
    from sora_core.frames.exr import read_image

    out, _ = exported
    _, shot, _ = signed_shot
    for name, codec, pix in (("ball.mp4", "h264", "yuv420p"), ("ball.mov", "prores", "yuv422p10le")):
        with av.open(str(out / name)) as c:
            v = c.streams.video[0]
            ctx = v.codec_context
            assert (ctx.name, ctx.pix_fmt, v.average_rate, v.frames) == (codec, pix, 24, 9)
            assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range) == (1, 13, 1, 1)
            first = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(float) / 255
        expect = ViewTransform().to_display(read_image(shot / "ball.0001.exr"))
        luma = np.array([0.2126, 0.7152, 0.0722])        # chroma is subsampled: compare brightness
        error = np.abs(first @ luma - expect @ luma)
        assert error.mean() < 0.04     # tiny noisy frames; without the view transform it is ~0.2
        assert np.abs(first.mean((0, 1)) - expect.mean((0, 1))).max() < 0.01
    png = read_image(out / "png/ball.0001.png")
    assert np.abs(png - ViewTransform().to_display(read_image(shot / "ball.0001.exr"))).max() <= 0.5 / 255 + 1e-6


def test_every_deliverable_verifies_and_names_its_shot(exported, signed_shot, chain):
    out, runs = exported
    root, shot, _ = signed_shot
    assert sorted(p.name for p in (out / "png").iterdir()) == [f"ball.{n:04d}.png" for n in range(1, 10)]
    assert not [p for p in out.rglob(".*")]             # no temporary left behind
    for path in (out / "ball.mp4", out / "ball.mov", out / "png", out / "f3.jpg"):
        code, report = verify(path, "--shot", shot, cwd=root)
        assert code == 0 and report["verdict"] == "verified", report["problems"]
        assert report["signer"]["common_name"] == "Test Studio Signer" and not report["trusted"]
        assert any(c["check"] == "ingredient" and c["ok"] for c in report["checks"])
    code, report = verify(out / "ball.mp4", "--trust", chain["root"], "--require-trusted", cwd=root)
    assert code == 0 and report["trusted"]
    text = sora("verify", out / "ball.mp4", cwd=root).stdout
    assert text.startswith("VERIFIED:") and "made from shot ball.####.exr" in text


def _mdat_offset(path):
    """A byte inside the video's sample data (mdat), far from any C2PA box."""
    data = path.read_bytes()
    at = data.index(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    return at + 4 + size // 2


def test_a_byte_flipped_in_a_deliverable_exits_65_naming_it(exported, signed_shot, tmp_path):
    out, _ = exported
    root, _, _ = signed_shot
    for name in ("ball.mp4", "f3.jpg", "png/ball.0002.png"):
        copy = tmp_path / Path(name).name
        shutil.copy(out / name, copy)
        data = bytearray(copy.read_bytes())
        i = _mdat_offset(copy) if name.endswith(".mp4") else len(data) - 200
        data[i] ^= 0x01
        copy.write_bytes(bytes(data))
        code, report = verify(copy, cwd=root)
        assert code == 65 and report["verdict"] == "tampered", (name, report)
        assert any(p.startswith(f"{copy.name}: content changed after it was signed") for p in report["problems"]), \
            report["problems"]


def test_a_deliverable_of_another_shot_and_a_stripped_file_fail(exported, signed_shot, tmp_path):
    out, _ = exported
    root, shot, _ = signed_shot
    other = tmp_path / "other"
    shutil.copytree(shot, other)
    (other / "manifest.json").write_text((other / "manifest.json").read_text().replace('"seed": 5', '"seed": 7', 1))
    code, report = verify(out / "ball.mp4", "--shot", other, cwd=root)
    assert code == 65 and "its parent ingredient is not" in report["problems"][0]
    import av
    plain = tmp_path / "plain.mp4"
    with av.open(str(out / "ball.mp4")) as src, av.open(str(plain), "w") as dst:   # remux: C2PA dropped
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    code, report = verify(plain, cwd=root)
    assert code == 65 and report["problems"] == ["plain.mp4: carries no C2PA manifest"]


def test_a_tampered_or_unsigned_shot_is_not_exported(signed_shot, chain, tmp_path):
    from .test_signing import _edit_pixel

    root, shot, _ = signed_shot
    bad = tmp_path / "bad"
    shutil.copytree(shot, bad)
    _edit_pixel(bad / "ball.0005.exr")
    run = export(bad, "mp4", tmp_path / "bad.mp4", chain, cwd=root)
    assert run.returncode == 65 and "ball.0005.exr: content changed" in run.stderr
    gone = tmp_path / "gone"
    shutil.copytree(shot, gone)
    (gone / "ball.0002.exr").unlink()
    run = export(gone, "png", tmp_path / "gone_png", chain, cwd=root)
    assert run.returncode == 65 and "ball.0002.exr: deleted" in run.stderr
    unsigned = tmp_path / "unsigned"
    shutil.copytree(shot, unsigned)
    (unsigned / "manifest.jws").unlink()
    (unsigned / "manifest.c2pa").unlink()
    run = export(unsigned, "mp4", tmp_path / "u.mp4", chain, cwd=root)
    assert run.returncode == 65 and "not signed" in run.stderr
    run = export(unsigned, "mp4", tmp_path / "u.mp4", chain, "--allow-unsigned", cwd=root)
    assert run.returncode == 0, run.stderr
    code, report = verify(tmp_path / "u.mp4", cwd=root)
    assert code == 0 and "an unsigned shot" in json.dumps(report["checks"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "gone", "u.mp4", "unsigned"]


def test_bad_requests_are_refused_before_anything_is_written(signed_shot, chain, tmp_path):
    root, shot, _ = signed_shot
    cases = [("mp4", tmp_path / "a.mov", [], "should end in .mp4"),
             ("mov", tmp_path / "a.mov", ["--crf", "20"], "--crf (0-51) applies to --format mp4 only"),
             ("mp4", tmp_path / "a.mp4", ["--frame", "2"], "--frame picks one still"),
             ("png", tmp_path / "a.png", ["--frame", "99"], "frame 99 is not in"),
             ("mov", tmp_path / "a.mov", ["--watermark"], "--watermark is for 8-bit deliverables")]
    for fmt, out, flags, message in cases:
        run = export(shot, fmt, out, chain, *flags, cwd=root)
        assert run.returncode == 2 and message in run.stderr, (fmt, flags, run.stderr)
    run = sora("export", shot, "--format", "mp4", "--out", tmp_path / "n.mp4", cwd=root)
    assert run.returncode == 2 and "no signing identity is set up" in run.stderr
    assert sora("export", tmp_path / "nothing", "--format", "mp4", "--out", tmp_path / "x.mp4",
                *sign_flags(chain), cwd=root).returncode == 3
    assert list(tmp_path.iterdir()) == []


def test_exported_files_hold_no_key(exported, chain):
    out, runs = exported
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    blobs += [r.stdout.encode() + r.stderr.encode() for r in runs.values()]
    for secret in chain["secrets"]:
        assert not any(secret in blob for blob in blobs)


def test_a_watermark_carries_the_shot_id_and_is_reported(signed_shot, chain, tmp_path):
    """An ingested 320x288 plate (the watermark needs 256x256), exported as a marked PNG and MP4."""
    import numpy as np
    import OpenImageIO as oiio

    from sora_core.manifest import read_manifest
    from sora_core.provenance.credentials import assertion
    from sora_core.provenance.jws import canonical_sha256

    (tmp_path / "src").mkdir()
    yy, xx = np.mgrid[0:288, 0:320]
    for n in range(1, 4):
        img = np.stack([(xx + 9 * n) % 256, yy * 0.8, 128 + 60 * np.sin(xx / 17 + n)], -1)
        out = oiio.ImageOutput.create("png")
        out.open(str(tmp_path / f"src/plate.{n:04d}.png"), oiio.ImageSpec(320, 288, 3, "uint8"))
        out.write_image(np.clip(img, 0, 255).astype(np.uint8))
        out.close()
    assert sora("ingest", tmp_path / "src/plate.####.png", "--out", "plate", *sign_flags(chain),
                cwd=tmp_path).returncode == 0
    shot_id = canonical_sha256(read_manifest(tmp_path / "plate"))[:8]
    for fmt, out, flags in (("png", "m.png", ["--frame", "2"]), ("mp4", "m.mp4", [])):
        run = export(tmp_path / "plate", fmt, tmp_path / out, chain, "--watermark", *flags, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        code, report = verify(tmp_path / out, cwd=tmp_path)
        assert code == 0
        mark, = [c for c in report["checks"] if c["check"] == "watermark"]
        assert mark["ok"] is True and "carries the shot's id" in mark["detail"]
        actions = assertion(_store(tmp_path / out)["active"], "c2pa.actions.v2")["actions"]
        assert "c2pa.watermarked" in [a["action"] for a in actions]
        assert all(a.get("digitalSourceType") is None for a in actions)       # footage, not generated
    from sora_core.provenance.watermark import read_file
    assert read_file(tmp_path / "m.png", None) == shot_id
    small = export(signed_shot[1], "mp4", tmp_path / "small.mp4", chain, "--watermark", cwd=tmp_path)
    assert small.returncode == 2 and "frames of 32x32 are too small" in small.stderr
    assert not (tmp_path / "small.mp4").exists() and not list(tmp_path.glob(".*"))


def test_events_give_a_host_progress_per_frame_then_the_result_or_the_error(signed_shot, chain, tmp_path):
    root, shot, _ = signed_shot
    run = export(shot, "png", tmp_path / "seq", chain, "--events", cwd=root)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 10)) and {e["total"] for e in progress} == {9}
    assert progress[-1]["overall"] == 1.0 and events[-1]["event"] == "done"
    assert events[-1]["files"] == [str(tmp_path / "seq" / f"ball.{n:04d}.png") for n in range(1, 10)]
    refused = export(shot, "mov", tmp_path / "x.mov", chain, "--events", "--crf", "20", cwd=root)
    last = json.loads(refused.stdout.splitlines()[-1])
    assert refused.returncode == 2 and last["event"] == "error" and last["field"] == "crf"
