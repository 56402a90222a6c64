"""A throwaway ES256 chain made here with ``cryptography``, and one signed shot per module."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

SORA = [sys.executable, "-m", "sora_core.cli"]
SMALL = ["--frames", "9", "--width", "32", "--height", "32", "--steps", "2"]


def sora(*args, cwd, env=None, timeout=300):
    """The CLI with no signing, trust, policy or config from the machine: only what ``env`` adds."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("SORA_SIGN", "SORA_TRUST", "SORA_POLICY", "SORA_CONFIG", "SORA_OUTPUT_ROOT"))}
    full.update(HF_HUB_OFFLINE="1", XDG_CONFIG_HOME=str(Path(cwd) / "xdg"), **(env or {}))
    return subprocess.run([*SORA, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full)


def write_pngs(folder: Path, name: str, count: int, size: int = 16) -> Path:
    """8-bit PNG frames name.0001.png.. (a flat grey that brightens), through OpenImageIO."""
    import numpy as np
    import OpenImageIO as oiio

    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        img = np.full((size, size, 3), 40 * n % 256, np.uint8)
        out = oiio.ImageOutput.create("png")
        out.open(str(folder / f"{name}.{n:04d}.png"), oiio.ImageSpec(size, size, 3, "uint8"))
        out.write_image(img)
        out.close()
    return folder / f"{name}.####.png"


def make_chain(folder: Path) -> dict:
    """Root CA + ES256 signer, written as chain.pem (signer first), key.pem, root.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Studio")])

    def usage(sign):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    base = lambda subject, issuer, public: (x509.CertificateBuilder().subject_name(subject)  # noqa: E731
                                            .issuer_name(issuer).public_key(public)
                                            .serial_number(x509.random_serial_number())
                                            .not_valid_before(now - datetime.timedelta(hours=1))
                                            .not_valid_after(now + datetime.timedelta(days=30)))
    root = (base(name("Test Studio Root"), name("Test Studio Root"), root_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(False), critical=True).sign(root_key, hashes.SHA256()))
    leaf = (base(name("Test Studio Signer"), root.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"chain": folder / "chain.pem", "key": folder / "key.pem", "root": folder / "root.pem"}
    paths["chain"].write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    paths["key"].write_bytes(key_pem)
    paths["root"].write_bytes(root.public_bytes(pem))
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return {**paths, "secrets": [key_pem, b"".join(key_pem.split(b"\n")[1:-2]), der, scalar]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return make_chain(tmp_path_factory.mktemp("chain"))


@pytest.fixture(scope="module")
def signed_shot(tiny_ltx, chain, tmp_path_factory):
    """A 9-frame shot made by the worker and signed with ``chain``; (root folder, shot folder, run)."""
    root = tmp_path_factory.mktemp("signed")
    run = sora("generate", "--prompt", "a red ball moving right", "--model", tiny_ltx, *SMALL, "--out",
               "shots/ball", "--name", "ball", "--seed", "5", "--sign-cert", chain["chain"], "--sign-key",
               chain["key"], "--save-spec", root / "ball.json", cwd=root)
    assert run.returncode == 0, run.stderr
    run = sora("run", root / "ball.json", "--sign-cert", chain["chain"], "--sign-key", chain["key"], cwd=root)
    assert run.returncode == 0, run.stderr
    return root, root / "shots/ball", run
