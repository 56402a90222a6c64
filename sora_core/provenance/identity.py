"""Who signs: a certificate chain and its private key (PEM), from flags, environment or config.

Precedence: ``--sign-cert/--sign-key`` > ``SORA_SIGN_CERT``/``SORA_SIGN_KEY`` > the config file
(``$SORA_CONFIG``, else ``$XDG_CONFIG_HOME/sora/config.json``, keys ``sign_cert``, ``sign_key``,
``trust_anchors``, ``policy``). Only paths travel (to the worker as environment variables);
the key's bytes are read by ``keys.load_signer`` in the process that signs. Light half.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SoraError

CERT_ENV, KEY_ENV, PASSWORD_ENV = "SORA_SIGN_CERT", "SORA_SIGN_KEY", "SORA_SIGN_KEY_PASSWORD"
TRUST_ENV, CONFIG_ENV = "SORA_TRUST_ANCHORS", "SORA_CONFIG"


@dataclass(frozen=True)
class Identity:
    """Paths of a signing chain and key, and where they were configured (for messages)."""

    cert: Path
    key: Path
    source: str

    def env(self) -> dict[str, str]:
        """What a worker process needs to sign with this identity (paths, never key bytes)."""
        return {CERT_ENV: str(self.cert), KEY_ENV: str(self.key)}


def config_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sora" / "config.json"


def load_config() -> dict:
    """The studio config file (``{}`` when there is none); a broken one is an error, not ignored."""
    path = config_path()
    if not path.is_file():
        if os.environ.get(CONFIG_ENV):
            raise SoraError("not_found", f"{CONFIG_ENV}: config file not found: {path}")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SoraError("invalid_input", f"config file {path} cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SoraError("invalid_input", f"config file {path} must hold a JSON object")
    base = path.parent
    for key in ("sign_cert", "sign_key", "trust_anchors", "policy"):   # relative to the file
        if isinstance(data.get(key), str):
            data[key] = str((base / os.path.expanduser(data[key])).resolve())
    return data


def resolve_identity(cert: str | None = None, key: str | None = None) -> Identity | None:
    """The configured identity, or None when signing is not set up anywhere.

    Half an identity (a certificate without a key, or the reverse) is an error naming both
    settings, never a silent unsigned shot.
    """
    if cert or key:
        source, c, k = "--sign-cert/--sign-key", cert, key
    elif os.environ.get(CERT_ENV) or os.environ.get(KEY_ENV):
        source, c, k = f"{CERT_ENV}/{KEY_ENV}", os.environ.get(CERT_ENV), os.environ.get(KEY_ENV)
    else:
        config = load_config()
        source, c, k = f"config file {config_path()}", config.get("sign_cert"), config.get("sign_key")
        if not (c or k):
            return None
    if not (c and k):
        raise SoraError("invalid_input", f"{source}: a signing identity needs both a certificate chain "
                        "and a private key", field="sign_cert" if not c else "sign_key",
                        hint="give both --sign-cert CHAIN.pem and --sign-key KEY.pem "
                        "(sora keys new DIR makes a local pair for trying it out)")
    identity = Identity(Path(c).expanduser().resolve(), Path(k).expanduser().resolve(), source)
    for what, path in (("certificate chain", identity.cert), ("private key", identity.key)):
        if not path.is_file():
            raise SoraError("not_found", f"{source}: {what} not found: {path}")
    return identity


def trust_anchors(path: str | None = None) -> str | None:
    """PEM text of the trust anchors (``--trust``, ``SORA_TRUST_ANCHORS`` or config), or None."""
    path = path or os.environ.get(TRUST_ENV) or load_config().get("trust_anchors")
    if not path:
        return None
    try:
        return Path(path).expanduser().read_text(encoding="ascii")
    except OSError as exc:
        raise SoraError("not_found", f"trust anchors {path} cannot be read: {exc}") from None
    except UnicodeDecodeError:
        raise SoraError("invalid_input", f"trust anchors {path} is not a PEM file") from None
