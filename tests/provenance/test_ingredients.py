"""A shot's inputs are C2PA ingredients of its sidecar: each with its own hash, and the C2PA it
carried (a signed still's embedded manifest; a sora shot's own signed sidecar), so the chain of
an animation or an extension reaches back to what it was made from."""

import hashlib
import json

from .conftest import SMALL, sora


def _ingredients(shot):
    from sora_core.manifest import read_manifest
    from sora_core.provenance.credentials import read
    from sora_core.provenance.jws import canonical

    store = read(data=canonical(read_manifest(shot)), fmt="application/json",
                 sidecar=(shot / "manifest.c2pa").read_bytes())
    assert store["state"] == "Valid" and store["failures"] == [], store["failures"]
    return {i["instance_id"]: i for i in store["active"].get("ingredients") or []}, store["manifests"]


def test_an_animation_and_an_extension_carry_their_inputs_and_those_inputs_credentials(signed_shot, chain, tiny_ltx):
    from sora_core.manifest import read_manifest
    from sora_core.provenance.jws import canonical_sha256

    root, shot, _ = signed_shot
    signing = ["--sign-cert", chain["chain"], "--sign-key", chain["key"]]
    still = root / "still.jpg"
    run = sora("export", shot, "--format", "jpeg", "--frame", "3", "--out", still, *signing, cwd=root)
    assert run.returncode == 0, run.stderr
    run = sora("animate", "--image", still, "--prompt", "a red ball", "--model", tiny_ltx, *SMALL,
               "--out", "shots/anim", "--name", "anim", *signing, cwd=root)
    assert run.returncode == 0, run.stderr
    found, manifests = _ingredients(root / "shots/anim")
    image = found["image"]
    assert image["relationship"] == "inputTo" and image["title"] == "still.jpg"
    assert image["metadata"]["sora:sha256"] == hashlib.sha256(still.read_bytes()).hexdigest()
    carried = [m for m in manifests if m.get("label") == image.get("active_manifest")]
    assert carried and carried[0]["title"] == "still.jpg"      # the still's own signed manifest, by its name
    assert any(a["label"] == "org.sora.export" for a in carried[0]["assertions"])

    run = sora("extend", "--input", shot / "ball.####.exr", "--prompt", "the ball keeps going", "--model",
               tiny_ltx, *SMALL, "--out", "shots/ext", "--name", "ext", *signing, cwd=root)
    assert run.returncode == 0, run.stderr
    found, manifests = _ingredients(root / "shots/ext")
    frames = found["frames"]
    assert frames["metadata"]["sora:manifest_sha256"] == canonical_sha256(read_manifest(shot))
    carried = [m for m in manifests if m.get("label") == frames.get("active_manifest")]
    assert carried, json.dumps(frames)[:500]                               # the plate's signed sidecar
    plate = [a for a in carried[0]["assertions"] if a["label"] == "org.sora.generation"][0]["data"]
    assert plate["prompt"] == "a red ball moving right" and plate["seed"] == 5
