"""Keys through ``cryptography``: a local test chain (``sora keys new``) and the loaded signer.

``new_chain`` makes a root and a signing certificate whose profile C2PA validators accept
(digitalSignature, emailProtection/documentSigning, not a CA); the root is self-made, so every
verifier reports the signer as untrusted unless that root is given to it as a trust anchor.
``load_signer`` reads an identity's chain and key in the process that signs; the key object
stays in memory and its bytes are handed only to the C2PA library.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SoraError
from .identity import PASSWORD_ENV, Identity

ALGORITHMS = ("es256", "ps256", "ed25519")
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"
UNTRUSTED_NAME = "sora local test signer (untrusted)"


def _x509():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    except ImportError:
        raise SoraError("not_found", "signing needs the cryptography package",
                        hint="pip install 'sora-core[worker]'") from None
    return x509, hashes, serialization, ec, ed25519, padding, rsa


def _new_key(alg: str):
    _, _, _, ec, ed25519, _, rsa = _x509()
    if alg == "es256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ps256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ed25519.Ed25519PrivateKey.generate()


def new_chain(folder: str | Path, alg: str = "es256", name: str = UNTRUSTED_NAME,
              days: int = 365) -> dict[str, Path]:
    """Write ``chain.pem`` (signer + root), ``key.pem`` (mode 0600) and ``root.pem`` into ``folder``.

    Refuses to overwrite an existing key. Returns the three paths.
    """
    if alg not in ALGORITHMS:
        raise SoraError("invalid_input", f"--alg {alg!r} is not one of {', '.join(ALGORITHMS)}", field="alg")
    x509, hashes, serialization, *_ = _x509()
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    paths = {"chain": folder / "chain.pem", "key": folder / "key.pem", "root": folder / "root.pem"}
    taken = [str(p) for p in paths.values() if p.exists()]
    if taken:
        raise SoraError("invalid_input", f"{folder} already holds {', '.join(taken)}",
                        hint="choose an empty folder; a signing key is never overwritten")
    digest = None if alg == "ed25519" else hashes.SHA256()
    now = datetime.datetime.now(datetime.timezone.utc)

    def subject(cn: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sora local test (untrusted)")])

    def usage(sign: bool):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    root_key, key = _new_key(alg), _new_key(alg)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    root = (x509.CertificateBuilder().subject_name(subject(f"{name} root")).issuer_name(subject(f"{name} root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, digest))
    leaf = (x509.CertificateBuilder().subject_name(subject(name)).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                  x509.ObjectIdentifier(DOCUMENT_SIGNING)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, digest))
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths["chain"].write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    paths["root"].write_bytes(root.public_bytes(pem))
    return paths


@dataclass
class CertInfo:
    """What a verifier shows about a signer (public facts only)."""

    common_name: str
    organization: str
    fingerprint: str        # sha256 of the signing certificate's DER

    def to_dict(self) -> dict:
        return {"common_name": self.common_name, "organization": self.organization,
                "fingerprint": self.fingerprint}


def cert_info(cert) -> CertInfo:
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    def first(oid) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    der = cert.public_bytes(serialization.Encoding.DER)
    return CertInfo(first(NameOID.COMMON_NAME), first(NameOID.ORGANIZATION_NAME), hashlib.sha256(der).hexdigest())


class Signer:
    """A loaded identity: signs bytes (JWS) and makes C2PA signers, without exposing the key."""

    def __init__(self, identity: Identity):
        x509, hashes, serialization, ec, ed25519, padding, rsa = _x509()
        self.identity = identity
        try:
            self.chain = x509.load_pem_x509_certificates(identity.cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise SoraError("invalid_input", f"{identity.source}: {identity.cert} is not a PEM certificate "
                            f"chain ({exc})", field="sign_cert") from None
        password = os.environ.get(PASSWORD_ENV)
        try:
            self._key = serialization.load_pem_private_key(identity.key.read_bytes(),
                                                           password.encode() if password else None)
        except (OSError, ValueError, TypeError) as exc:
            raise SoraError("invalid_input", f"{identity.source}: {identity.key} is not a usable PEM private "
                            f"key ({type(exc).__name__}; an encrypted key needs {PASSWORD_ENV})",
                            field="sign_key") from None
        public = self._key.public_key()
        if public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                self.chain[0].public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo):
            raise SoraError("invalid_input", f"{identity.source}: the private key {identity.key} does not belong "
                            f"to the first certificate of {identity.cert}", field="sign_key")
        if isinstance(self._key, ec.EllipticCurvePrivateKey) and self._key.curve.name == "secp256r1":
            self.alg = "ES256"
        elif isinstance(self._key, rsa.RSAPrivateKey):
            self.alg = "PS256"
        elif isinstance(self._key, ed25519.Ed25519PrivateKey):
            self.alg = "EdDSA"
        else:
            raise SoraError("invalid_input", f"{identity.key}: only P-256 (ES256), RSA (PS256) and Ed25519 "
                            "keys are supported", field="sign_key")
        self.info = cert_info(self.chain[0])
        self._probe()

    def _probe(self) -> None:
        """Sign a few bytes with C2PA now, so a chain C2PA refuses fails before any work."""
        try:
            import c2pa  # noqa: F401
        except ImportError:
            return          # signing will say so; a host without c2pa can still check paths
        from .credentials import TRAINED, Ingredients, sign_sidecar
        definition = {"claim_generator_info": [{"name": "sora_core"}], "title": "probe",
                      "assertions": [{"label": "c2pa.actions.v2",
                                      "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": TRAINED}]}}]}
        try:
            sign_sidecar(definition, Ingredients(), b"{}", self)
        except SoraError as err:
            raise SoraError("invalid_input", f"{self.identity.source}: C2PA does not accept the certificate "
                            f"{self.identity.cert} ({err.message.split(': ', 1)[-1]})", field="sign_cert",
                            hint="a C2PA signing certificate needs digitalSignature key usage, an "
                            "emailProtection or documentSigning extended key usage, not a CA flag, and "
                            "an authority key identifier; sora keys new DIR makes one") from None

    def sign(self, data: bytes) -> bytes:
        """A JWS signature of ``data`` (ES256 as raw r||s, PS256, EdDSA)."""
        _, hashes, _, ec, _, padding, _ = _x509()
        if self.alg == "ES256":
            from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
            r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "PS256":
            return self._key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        return self._key.sign(data)

    def chain_der(self) -> list[bytes]:
        from cryptography.hazmat.primitives import serialization
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]

    def c2pa_signer(self):
        """A fresh c2pa-python Signer (one is used up per manifest)."""
        import c2pa
        from cryptography.hazmat.primitives import serialization

        pem = serialization.Encoding.PEM
        chain = b"".join(c.public_bytes(pem) for c in self.chain)
        key = self._key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        alg = {"ES256": c2pa.C2paSigningAlg.ES256, "PS256": c2pa.C2paSigningAlg.PS256,
               "EdDSA": c2pa.C2paSigningAlg.ED25519}[self.alg]
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, chain, key, None))
