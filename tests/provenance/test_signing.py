"""Signed shot manifests and ``sora verify``: a clean shot verifies, each tampering is named (65)."""

import base64
import json
import shutil

import pytest

from .conftest import SMALL, sora, write_pngs


def verify(path, *flags, cwd, env=None):
    out = sora("verify", path, "--json", *flags, cwd=cwd, env=env)
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


def test_a_signed_shot_verifies_offline_and_trust_comes_from_the_anchor(signed_shot, chain):
    root, shot, _ = signed_shot
    assert {"manifest.json", "manifest.jws", "manifest.c2pa"} <= {p.name for p in shot.iterdir()}
    code, report = verify(shot, cwd=root)
    assert code == 0 and report["verdict"] == "verified" and report["problems"] == []
    assert report["signer"]["common_name"] == "Test Studio Signer" and report["trusted"] is False
    assert {c["check"] for c in report["checks"] if c["ok"]} == {"frames", "header", "C2PA sidecar",
                                                                "manifest signature"}
    assert verify(shot, "--require-trusted", cwd=root)[0] == 65
    code, report = verify(shot, "--trust", chain["root"], "--require-trusted", cwd=root)
    assert code == 0 and report["trusted"] is True
    code, report = verify(shot / "ball.0004.exr", cwd=root)      # one frame, against its shot
    assert code == 0 and report["kind"] == "frame" and report["verdict"] == "verified"
    text = sora("verify", shot, cwd=root).stdout
    assert text.startswith("VERIFIED:") and "untrusted" in text


def test_the_sidecar_asserts_how_the_shot_was_made(signed_shot):
    from sora_core.manifest import read_manifest
    from sora_core.provenance.credentials import TRAINED, assertion, read
    from sora_core.provenance.jws import canonical, canonical_sha256

    _, shot, _ = signed_shot
    manifest = read_manifest(shot)
    store = read(data=canonical(manifest), fmt="application/json", sidecar=(shot / "manifest.c2pa").read_bytes())
    assert store["failures"] == [] and store["state"] == "Valid"
    gen = assertion(store["active"], "org.sora.generation")
    assert gen["prompt"] == "a red ball moving right" and gen["seed"] == 5 and gen["mode"] == "generate"
    assert gen["model"]["name"] == "tiny-ltx" and gen["model"]["hash"] and gen["software"]["version"]
    frames = assertion(store["active"], "org.sora.frames")
    assert frames["manifest_sha256"] == canonical_sha256(manifest)
    assert [f["sha256"] for f in frames["frames"]] == [f["sha256"] for f in manifest["frames"]]
    actions = assertion(store["active"], "c2pa.actions.v2")["actions"]
    assert actions[0]["action"] == "c2pa.created" and actions[0]["digitalSourceType"] == TRAINED


def _edit_pixel(path):
    from sora_core.frames.exr import read_attrs, read_image, write_exr

    img = read_image(path)
    img[0, 0] += 0.25
    write_exr(path, img, {k: v for k, v in read_attrs(path).items() if k.startswith("sora:")})


def _flip(path, where=0.5, text=False):
    data = bytearray(path.read_bytes())
    i = int(len(data) * where) if where < 1 else len(data) - 10
    data[i] = (ord("A") if data[i] != ord("A") else ord("B")) if text else data[i] ^ 0x01
    path.write_bytes(bytes(data))


TAMPERING = {
    "pixel": (lambda s: _edit_pixel(s / "ball.0003.exr"), "ball.0003.exr: content changed"),
    "deleted": (lambda s: (s / "ball.0004.exr").unlink(), "ball.0004.exr: deleted"),
    "added": (lambda s: shutil.copy(s / "ball.0009.exr", s / "ball.0010.exr"), "ball.0010.exr: not in manifest.json"),
    "manifest": (lambda s: (s / "manifest.json").write_text((s / "manifest.json").read_text().replace(
        '"seed": 5', '"seed": 6', 1)), "manifest.json was edited after it was signed: seed changed from 5 to 6"),
    "jws": (lambda s: _flip(s / "manifest.jws", where=1, text=True), "manifest.jws: the signature was altered"),
    "sidecar": (lambda s: _flip(s / "manifest.c2pa"), "manifest.c2pa: altered"),
    "unsigned": (lambda s: [(s / n).unlink() for n in ("manifest.jws", "manifest.c2pa")], None),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_each_tampering_exits_65_naming_what_changed(case, signed_shot, tmp_path):
    root, shot, _ = signed_shot
    copy = tmp_path / "ball"
    shutil.copytree(shot, copy)
    tamper, named = TAMPERING[case]
    tamper(copy)
    code, report = verify(copy, cwd=root)
    assert code == 65
    if named is None:        # signatures removed: hashes still match, but nothing is proven
        assert report["verdict"] == "unsigned" and report["problems"] == []
        assert verify(copy, "--allow-unsigned", cwd=root)[0] == 0
        return
    assert report["verdict"] == "tampered"
    assert any(p.startswith(named) or named in p for p in report["problems"]), report["problems"]
    text = sora("verify", copy, cwd=root)
    assert text.returncode == 65 and text.stdout.startswith("TAMPERED:") and named.split(":")[0] in text.stdout


def test_info_shows_the_verification_status(signed_shot, tmp_path):
    root, shot, _ = signed_shot
    out = sora("info", shot, cwd=root)
    assert out.returncode == 0 and "provenance verified, signed by Test Studio Signer (untrusted)" in out.stdout
    copy = tmp_path / "ball"
    shutil.copytree(shot, copy)
    _edit_pixel(copy / "ball.0002.exr")
    out = sora("info", copy, cwd=root)
    assert "provenance tampered" in out.stdout and "ball.0002.exr: content changed" in out.stdout


def test_verify_exit_codes_for_missing_and_unknown_paths(tmp_path):
    assert sora("verify", tmp_path / "nothing", cwd=tmp_path).returncode == 3
    (tmp_path / "notes.txt").write_text("hello")
    out = sora("verify", tmp_path / "notes.txt", cwd=tmp_path)
    assert out.returncode == 2 and "not a kind of file" in out.stderr


def test_keys_are_never_written_into_manifests_specs_or_logs(signed_shot, chain):
    root, _shot, run = signed_shot
    written = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.jws" for p in written) and any(p.suffix == ".json" for p in written)
    blobs = [p.read_bytes() for p in written] + [run.stdout.encode(), run.stderr.encode()]
    for secret in chain["secrets"]:
        assert not any(secret in blob for blob in blobs)
    spec = json.loads((root / "ball.json").read_text())
    assert "sign" not in json.dumps(spec) and str(chain["key"]) not in json.dumps(spec)


def test_a_half_or_wrong_identity_is_refused_before_any_work(tiny_ltx, chain, tmp_path):
    from .conftest import make_chain

    other = make_chain(tmp_path / "other")
    half = sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", "a",
                "--sign-cert", chain["chain"], cwd=tmp_path)
    assert half.returncode == 2 and "needs both a certificate chain and a private key" in half.stderr
    wrong = sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", "b",
                 "--sign-cert", chain["chain"], "--sign-key", other["key"], cwd=tmp_path)
    assert wrong.returncode == 2 and "does not belong to the first certificate" in wrong.stderr
    missing = sora("generate", "--prompt", "x", "--model", tiny_ltx, *SMALL, "--out", "c",
                   env={"SORA_SIGN_CERT": str(chain["chain"]), "SORA_SIGN_KEY": str(tmp_path / "gone.pem")},
                   cwd=tmp_path)
    assert missing.returncode == 3 and "gone.pem" in missing.stderr
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))


def test_keys_new_signs_ingested_footage_through_the_config_file_and_is_untrusted(tmp_path):
    made = sora("keys", "new", tmp_path / "keys", "--alg", "ed25519", cwd=tmp_path)
    assert made.returncode == 0 and "UNTRUSTED" in made.stdout
    assert (tmp_path / "keys/key.pem").stat().st_mode & 0o077 == 0
    assert sora("keys", "new", tmp_path / "keys", cwd=tmp_path).returncode == 2     # never overwritten
    (tmp_path / "xdg/sora").mkdir(parents=True)
    (tmp_path / "xdg/sora/config.json").write_text(json.dumps(
        {"sign_cert": "../../keys/chain.pem", "sign_key": "../../keys/key.pem"}))
    write_pngs(tmp_path / "src", "plate", 3)
    out = sora("ingest", tmp_path / "src/plate.####.png", "--out", "plate", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    code, report = verify(tmp_path / "plate", cwd=tmp_path)
    assert code == 0 and report["trusted"] is False
    assert report["signer"]["common_name"] == "sora local test signer (untrusted)"
    code, report = verify(tmp_path / "plate", "--trust", tmp_path / "keys/root.pem", cwd=tmp_path)
    assert code == 0 and report["trusted"] is True


def test_a_ps256_identity_signs_and_verifies_through_the_environment(tmp_path):
    """RSA-PSS (ES256 and Ed25519 are covered above): a chain from keys new, given by environment."""
    assert sora("keys", "new", tmp_path / "rsa", "--alg", "ps256", cwd=tmp_path).returncode == 0
    env = {"SORA_SIGN_CERT": str(tmp_path / "rsa/chain.pem"), "SORA_SIGN_KEY": str(tmp_path / "rsa/key.pem")}
    write_pngs(tmp_path / "src", "plate", 2)
    out = sora("ingest", tmp_path / "src/plate.####.png", "--out", "plate", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    header = json.loads(base64.urlsafe_b64decode(
        (tmp_path / "plate/manifest.jws").read_text().split(".")[0] + "=="))
    assert header["alg"] == "PS256"
    code, report = verify(tmp_path / "plate", "--trust", tmp_path / "rsa/root.pem", cwd=tmp_path)
    assert code == 0 and report["trusted"] is True, report["problems"]
