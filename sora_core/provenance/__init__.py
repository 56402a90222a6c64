"""Provenance anyone can verify: signed shot manifests, C2PA deliverables, ``sora verify``.

A shot folder's ``manifest.json`` already lists every frame's sha256. With a signing identity
configured (``identity``), the end of a shot adds ``manifest.jws`` (a detached JWS over the
manifest's canonical form) and ``manifest.c2pa`` (a C2PA sidecar whose hard binding is the same
canonical bytes, so an EXR sequence, which C2PA cannot embed into, is covered). ``verify``
tells a clean shot, frame or deliverable from a tampered one. The keys are read only where a
signature is made and are never written anywhere.

Light at import: ``cryptography`` and ``c2pa`` are imported where they are used.
"""

from .identity import Identity, resolve_identity  # noqa: F401

JWS_NAME = "manifest.jws"
C2PA_NAME = "manifest.c2pa"
SIGNATURE_FILES = (JWS_NAME, C2PA_NAME)
