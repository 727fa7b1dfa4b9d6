"""The CLI's user-facing commands work end to end from a fresh data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HUB = [sys.executable, "-m", "hub"]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HUB, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_demo_trades_over_grpc_and_leaves_a_verifiable_ledger(tmp_path):
    data = tmp_path / "demo"
    demo = _run("demo", "--data-dir", str(data))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "book rebuilt from snapshot + increments equals the hub's snapshot" in demo.stdout
    assert "verified" in demo.stdout and "DEMO FAILED" not in demo.stdout

    verify = _run("ledger", "verify", "--data-dir", str(data))
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("ledger OK:")

    proof = _run("ledger", "prove-inclusion", "--data-dir", str(data), "--index", "5")
    assert proof.returncode == 0, proof.stderr
    bundle = tmp_path / "proof.json"
    bundle.write_text(proof.stdout)
    assert json.loads(proof.stdout)["index"] == 5
    # Checking needs only the public key, not the database.
    check = _run("ledger", "check-proof", str(bundle), "--public-key", str(data / "ledger_ed25519.pub"))
    assert check.returncode == 0, check.stderr
    assert "is in the signed tree" in check.stdout

    tampered = json.loads(proof.stdout)
    tampered["payload"] = "00" + tampered["payload"][2:]
    bundle.write_text(json.dumps(tampered))
    check = _run("ledger", "check-proof", str(bundle), "--public-key", str(data / "ledger_ed25519.pub"))
    assert check.returncode == 1 and "PROOF FAILED" in check.stderr


def test_ledger_commands_explain_a_missing_ledger(tmp_path):
    result = _run("ledger", "verify", "--data-dir", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "no ledger" in result.stderr


def test_serve_refuses_the_public_dev_tokens_on_a_reachable_address(tmp_path):
    served = _run("serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d"), timeout=60)
    assert served.returncode == 2
    assert "refusing to serve on 0.0.0.0 with the public development tokens" in served.stderr
    assert "operator" in served.stderr and "--insecure-dev-tokens" in served.stderr
    assert not (tmp_path / "d").exists(), "refused before touching the data directory"


def test_which_addresses_and_configs_may_serve_the_dev_tokens():
    from dataclasses import replace

    from hub.cli import dev_tokens_refusal
    from hub.config import HubConfig, hash_token

    dev = HubConfig.default()
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert dev_tokens_refusal(dev.with_network(host=host), allowed=False) is None, host
    for host in ("0.0.0.0", "::", "10.1.2.3", "hub.example.com"):
        assert dev_tokens_refusal(dev.with_network(host=host), allowed=False) is not None, host
        assert dev_tokens_refusal(dev.with_network(host=host), allowed=True) is None, host
    own = replace(dev, participants=tuple(replace(p, token_sha256=hash_token(f"secret-{p.id}"))
                                          for p in dev.participants)).with_network(host="0.0.0.0")
    assert own.public_dev_tokens() == [] and dev_tokens_refusal(own, allowed=False) is None
    one_copied = replace(own, participants=(replace(own.participants[0], token_sha256=hash_token(
        f"dev-{own.participants[0].id}")),) + own.participants[1:])
    assert one_copied.public_dev_tokens() == [own.participants[0].id]
    assert dev_tokens_refusal(one_copied, allowed=False) is not None


def test_demo_refuses_the_public_dev_tokens_on_a_reachable_address(tmp_path):
    demo = _run("demo", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), timeout=60)
    assert demo.returncode == 2 and "refusing to serve on 0.0.0.0" in demo.stderr
