"""The studio policy: what a shot may ask for and who may sign a deliverable.

A JSON file named by ``$SORA_POLICY``, else by the config file's ``policy`` key (see
``identity.load_config``); no file, no policy. Checked in the core before any work: shots in
``preflight.plan_shot`` (CLI, add-on, farm and Qt all pass through it, in the client and again
in the worker), deliverables in ``export.export_shot``. A refusal is ``invalid_input`` (exit 2)
naming the rule, raised before anything is written. Light half (stdlib only)::

    {"deny_prompts": [{"pattern": "jane doe", "reason": "client talent"}, "\\bacme\\b"],
     "required_fields": ["negative_prompt", "output.name"],
     "export": {"signer": {"organization": "Example Studio"}, "require_trusted": true}}

``deny_prompts`` are case-insensitive regular expressions searched in the prompt, the negative
prompt and every scheduled prompt; ``required_fields`` are dotted paths into the spec that must
hold a non-empty value; ``export.signer`` lists the signing certificate's ``common_name``,
``organization`` and/or ``fingerprint`` (sha256 of its DER) a deliverable must be signed with.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import SoraError

POLICY_ENV = "SORA_POLICY"
SIGNER_KEYS = ("common_name", "organization", "fingerprint")


def policy_path() -> Path | None:
    if os.environ.get(POLICY_ENV):
        return Path(os.environ[POLICY_ENV]).expanduser()
    from .identity import load_config

    value = load_config().get("policy")
    return Path(value) if value else None


def load_policy() -> dict:
    """The policy (``{}`` without one); a named file that is missing or malformed is refused."""
    path = policy_path()
    if path is None:
        return {}
    if not path.is_file():
        raise SoraError("not_found", f"policy file not found: {path}", field="policy")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SoraError("invalid_input", f"policy file {path} cannot be read as JSON: {exc}",
                        field="policy") from None
    if not isinstance(data, dict):
        raise SoraError("invalid_input", f"policy file {path} must hold a JSON object", field="policy")
    unknown = set(data) - {"deny_prompts", "required_fields", "export"}
    if unknown:
        raise SoraError("invalid_input", f"policy file {path}: unknown rule(s) {', '.join(sorted(unknown))}",
                        field="policy", hint="rules: deny_prompts, required_fields, export")
    data["_path"] = str(path)
    return data


def _refuse(policy: dict, rule: str, message: str) -> SoraError:
    return SoraError("invalid_input", f"refused by policy rule {rule}: {message}", field="policy",
                     hint=f"the studio policy is {policy['_path']}")


def _prompts(spec: dict) -> list[tuple[str, str]]:
    found = [("prompt", spec.get("prompt") or ""), ("negative_prompt", spec.get("negative_prompt") or "")]
    for i, item in enumerate(spec.get("prompt_schedule") or []):
        text = item.get("prompt") if isinstance(item, dict) else item
        found.append((f"prompt_schedule[{i}]", str(text or "")))
    return found


def _field(spec: dict, dotted: str):
    value = spec
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def check_spec(spec: dict, policy: dict | None = None) -> None:
    """Refuse a shot spec (its ``to_dict()``) that breaks the policy."""
    policy = load_policy() if policy is None else policy
    if not policy:
        return
    for i, rule in enumerate(policy.get("deny_prompts") or []):
        pattern = rule.get("pattern", "") if isinstance(rule, dict) else str(rule)
        reason = rule.get("reason", "") if isinstance(rule, dict) else ""
        name = f"deny_prompts[{i}]" + (f" ({reason})" if reason else "")
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise _refuse(policy, name, f"its pattern {pattern!r} is not a regular expression ({exc})") from None
        for where, text in _prompts(spec):
            if regex.search(text):
                raise _refuse(policy, name, f"the {where} matches the denied pattern {pattern!r}")
    for i, dotted in enumerate(policy.get("required_fields") or []):
        if _field(spec, str(dotted)) in (None, "", [], {}):
            raise _refuse(policy, f"required_fields[{i}]", f"the spec's {dotted} must be set")


def check_export(signer_info: dict, trusted: bool | None, policy: dict | None = None) -> None:
    """Refuse a deliverable whose signer is not the identity the policy requires."""
    policy = load_policy() if policy is None else policy
    rules = policy.get("export") or {}
    wanted = rules.get("signer") or {}
    for key in SIGNER_KEYS:
        if key in wanted and str(signer_info.get(key, "")).lower() != str(wanted[key]).lower():
            raise _refuse(policy, f"export.signer.{key}", f"deliverables must be signed with {key} "
                          f"{wanted[key]!r}; the configured signer has {signer_info.get(key)!r}")
    if rules.get("require_trusted") and trusted is False:
        raise _refuse(policy, "export.require_trusted", "the signing certificate does not chain to a "
                      "trust anchor on this machine (--trust ANCHORS.pem, SORA_TRUST_ANCHORS)")
