"""A detached JWS (RFC 7515, appendix F) over a manifest's canonical form.

Canonical form: the manifest as JSON with sorted keys, no whitespace, UTF-8, so re-indenting
``manifest.json`` does not break its signature but changing any value does. The protected
header carries the signer's chain (``x5c``); verification checks the signature, that each
certificate was issued by the next, and whether the chain ends at a trust anchor.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ..errors import SoraError

TYPE = "sora-manifest+jws"


def canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_sha256(manifest: dict) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_detached(payload: bytes, signer) -> str:
    """``header..signature``: the payload is not repeated, it is the manifest itself."""
    header = {"alg": signer.alg, "typ": TYPE, "x5c": [base64.b64encode(d).decode("ascii") for d in signer.chain_der()]}
    protected = _b64(json.dumps(header, separators=(",", ":")).encode())
    signature = signer.sign(f"{protected}.{_b64(payload)}".encode("ascii"))
    return f"{protected}..{_b64(signature)}"


def verify_detached(token: str, payload: bytes, anchors_pem: str | None) -> dict:
    """Check ``token`` against ``payload``: ``{valid, reason, signer, trusted}`` (never raises on
    a bad signature; raises SoraError only when the token is not a JWS at all)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    from .keys import cert_info

    try:
        protected, empty, sig = token.strip().split(".")
        header = json.loads(_unb64(protected))
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
        signature = _unb64(sig)
    except (ValueError, KeyError, TypeError) as exc:
        return {"valid": False, "reason": f"not a readable JWS ({type(exc).__name__})", "signer": None,
                "trusted": False}
    if empty:
        raise SoraError("invalid_input", "the JWS is not detached (it carries its own payload)")
    result = {"valid": False, "reason": "", "signer": cert_info(chain[0]).to_dict(), "trusted": False}
    data = f"{protected}.{_b64(payload)}".encode("ascii")
    key, alg = chain[0].public_key(), header.get("alg")
    try:
        if alg == "ES256":
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
            if len(signature) != 64:
                raise InvalidSignature()
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        elif alg == "PS256":
            key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        elif alg == "EdDSA":
            key.verify(signature, data)
        else:
            result["reason"] = f"unsupported algorithm {alg!r}"
            return result
    except (InvalidSignature, TypeError, ValueError):
        result["reason"] = "the signature does not match the manifest's canonical form"
        return result
    for cert, issuer in zip(chain, chain[1:]):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            result["reason"] = "the certificate chain is broken"
            return result
    result.update(valid=True, trusted=_anchored(chain, anchors_pem))
    return result


def _anchored(chain: list, anchors_pem: str | None) -> bool:
    """True when a chain certificate is an anchor, or the last one was issued by an anchor."""
    if not anchors_pem:
        return False
    from cryptography import x509

    try:
        anchors = x509.load_pem_x509_certificates(anchors_pem.encode("ascii"))
    except ValueError:
        return False
    if any(c == a for c in chain for a in anchors):
        return True
    for anchor in anchors:
        try:
            chain[-1].verify_directly_issued_by(anchor)
            return True
        except Exception:       # noqa: BLE001 - any mismatch means "not this anchor"
            continue
    return False
