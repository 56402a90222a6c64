"""The studio policy: a refusal names the rule, exits 2 and writes nothing, for every host."""

import json

import pytest

from .conftest import SMALL, sora


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({
        "deny_prompts": [{"pattern": r"jane\s+doe", "reason": "client talent"}, "acme"],
        "required_fields": ["negative_prompt"],
        "export": {"signer": {"organization": "Example Studio"}}}))
    return path


def test_a_denied_prompt_or_a_missing_field_is_refused_naming_the_rule(tiny_ltx, policy, tmp_path):
    env = {"SORA_POLICY": str(policy)}
    base = ["generate", "--model", tiny_ltx, *SMALL, "--negative-prompt", "blurry"]
    run = sora(*base, "--prompt", "Jane  Doe waves", "--out", "a", cwd=tmp_path, env=env)
    assert run.returncode == 2
    assert "refused by policy rule deny_prompts[0] (client talent): the prompt matches" in run.stderr
    run = sora(*base, "--prompt", "an ACME box", "--out", "b", "--save-spec", tmp_path / "b.json",
               cwd=tmp_path, env=env)
    assert run.returncode == 2 and "deny_prompts[1]" in run.stderr
    run = sora("generate", "--model", tiny_ltx, *SMALL, "--prompt", "a ball", "--out", "c", cwd=tmp_path, env=env)
    assert run.returncode == 2 and "required_fields[0]: the spec's negative_prompt must be set" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]      # nothing written
    run = sora(*base, "--prompt", "a ball", "--out", "d", "--dry-run", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr      # what the policy allows goes through


def test_the_worker_refuses_too_so_every_host_is_covered(policy, tmp_path, monkeypatch):
    """The add-on, the farm and Qt submit to the worker directly: plan_shot checks there as well."""
    from sora_core.client import WorkerClient
    from sora_core.errors import SoraError
    from sora_core.spec import ShotSpec

    monkeypatch.setenv("SORA_POLICY", str(policy))
    spec = ShotSpec.from_dict({"prompt": "jane doe on a beach", "negative_prompt": "x", "model": "tinyworld",
                               "steps": 1, "frames": 2, "output": {"dir": "s", "name": "s"}})
    with WorkerClient(env={"SORA_POLICY": str(policy)}) as client:
        with pytest.raises(SoraError) as err:
            client.run(spec, str(tmp_path))
    assert err.value.code == "invalid_input" and "deny_prompts[0]" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]


def test_export_needs_the_signer_the_policy_names(signed_shot, chain, policy, tmp_path):
    root, shot, _ = signed_shot
    flags = ["--sign-cert", chain["chain"], "--sign-key", chain["key"]]
    run = sora("export", shot, "--format", "mp4", "--out", tmp_path / "a.mp4", *flags, cwd=root,
               env={"SORA_POLICY": str(policy)})
    assert run.returncode == 2
    assert ("refused by policy rule export.signer.organization: deliverables must be signed with "
            "organization 'Example Studio'; the configured signer has 'Test Studio'") in run.stderr
    allowed = tmp_path / "allowed.json"
    allowed.write_text(json.dumps({"export": {"signer": {"organization": "test studio"},
                                              "require_trusted": True}}))
    config = tmp_path / "xdg/sora/config.json"          # the policy named by the config file
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"policy": str(allowed)}))
    run = sora("export", shot, "--format", "mp4", "--out", tmp_path / "b.mp4", *flags, cwd=root,
               env={"SORA_CONFIG": str(config)})
    assert run.returncode == 2 and "export.require_trusted" in run.stderr
    run = sora("export", shot, "--format", "mp4", "--out", tmp_path / "c.mp4", *flags, "--trust", chain["root"],
               cwd=root, env={"SORA_CONFIG": str(config)})
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowed.json", "c.mp4", "policy.json", "xdg"]


def test_a_broken_policy_is_an_error_not_ignored(tmp_path):
    (tmp_path / "p.json").write_text('{"deny_prompt": ["x"]}')
    run = sora("generate", "--prompt", "x", "--model", "tinyworld", "--out", "a", cwd=tmp_path,
               env={"SORA_POLICY": str(tmp_path / "p.json")})
    assert run.returncode == 2 and "unknown rule(s) deny_prompt" in run.stderr
    run = sora("generate", "--prompt", "x", "--model", "tinyworld", "--out", "a", cwd=tmp_path,
               env={"SORA_POLICY": str(tmp_path / "none.json")})
    assert run.returncode == 3 and "policy file not found" in run.stderr
