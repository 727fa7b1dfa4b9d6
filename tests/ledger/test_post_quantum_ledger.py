"""``[ledger] post_quantum = true``: every checkpoint of the hub's ledger carries an ML-DSA-65
signature beside the Ed25519 one, a restart keeps the same keys, and ``hub ledger verify
--post-quantum`` insists on both (a ledger without the second line, or with it altered, fails and
names the checkpoint)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hub.cli import main as cli_main
from hub.config import ConfigError, HubConfig
from hub.server import open_ledger_journal
from hub.v1 import common_pb2 as cpb
from ledger.signing import MLDSA65_PUB_FILE, load_verifier, mldsa_available
from tests.ledger.conftest import identities, order, start_hub, stop_hub
from tests.ledger.test_signing import with_pq_signature_altered

needs_mldsa = pytest.mark.skipif(not mldsa_available(), reason="installed cryptography has no ML-DSA support")


def _config(data_dir: Path, post_quantum: bool) -> HubConfig:
    base = HubConfig.default()
    return replace(base, data_dir=str(data_dir), ledger=replace(base.ledger, post_quantum=post_quantum)).validated()


def _run_some_orders(cfg: HubConfig, orders: int = 12) -> None:
    hub = start_hub(open_ledger_journal(cfg), cfg)
    who = identities(cfg)["scalper-1"]
    for i in range(orders):
        _, reason, text = hub.submit_order(who, order("AAPL", cpb.BUY, 189_0000 - 100 * i, 100))
        assert reason == 0, text
    hub.journal.checkpoint(hub.state_digest_bytes(), hub.clock())
    hub.journal.flush()
    stop_hub(hub)


def _verify(capsys: pytest.CaptureFixture, data_dir: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli_main(["ledger", "verify", "--data-dir", str(data_dir), "--workers", "1", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def _notes(data_dir: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT note FROM ledger_checkpoint ORDER BY tree_size")]


@needs_mldsa
def test_a_post_quantum_ledger_signs_every_checkpoint_twice_and_verifies_with_both_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path / "pq", post_quantum=True)
    _run_some_orders(cfg)
    _run_some_orders(cfg)  # a restart: the same two keys sign on
    notes = _notes(tmp_path / "pq")
    assert len(notes) >= 3
    pq = load_verifier(tmp_path / "pq" / MLDSA65_PUB_FILE)
    for note in notes:
        assert len(note.split("\n\n")[1].splitlines()) == 2, "an Ed25519 and an ML-DSA-65 line"
        pq.verify(note)
    code, out = _verify(capsys, tmp_path / "pq", "--post-quantum")
    assert code == 0 and out.startswith("ledger OK:"), out
    code, out = _verify(capsys, tmp_path / "pq")  # Ed25519-only verifiers still check it
    assert code == 0, out


@needs_mldsa
def test_post_quantum_verification_fails_a_ledger_without_the_second_signature(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plain = tmp_path / "plain"
    _run_some_orders(_config(plain, post_quantum=False))
    assert not (plain / MLDSA65_PUB_FILE).exists()
    code, out = _verify(capsys, plain)
    assert code == 0, out
    # A key from elsewhere pinned: every checkpoint lacks its signature.
    other = tmp_path / "pq"
    _run_some_orders(_config(other, post_quantum=True))
    code, out = _verify(capsys, plain, "--post-quantum", "--pq-public-key", str(other / MLDSA65_PUB_FILE))
    assert code != 0 and "checkpoint at tree size" in out, out


@needs_mldsa
def test_an_altered_post_quantum_signature_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import sqlite3

    data = tmp_path / "pq"
    _run_some_orders(_config(data, post_quantum=True))
    note = _notes(data)[0]
    bad = with_pq_signature_altered(note, 200)
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        db.execute("DROP TRIGGER ledger_checkpoint_no_update")
        db.execute("UPDATE ledger_checkpoint SET note = ? WHERE note = ?", (bad, note))
    code, out = _verify(capsys, data, "--post-quantum")
    assert code != 0 and "signature does not verify" in out, out
    code, out = _verify(capsys, data)  # the Ed25519 line is intact
    assert code == 0, out


def test_post_quantum_without_ml_dsa_is_refused_at_configuration(monkeypatch) -> None:
    import ledger.signing

    monkeypatch.setattr(ledger.signing, "mldsa_available", lambda: False)
    with pytest.raises(ConfigError, match="post_quantum"):
        _config(Path("unused"), post_quantum=True)


@needs_mldsa
def test_the_config_file_turns_post_quantum_signing_on(tmp_path: Path) -> None:
    from hub.config import hash_token, load_config

    participant = (f'[[participant]]\nid = "alice"\nclass = "scalper"\n'
                   f'token_sha256 = "{hash_token("alice-secret")}"\naccounts = [11]\n')
    path = tmp_path / "hub.toml"
    path.write_text(f'[ledger]\npost_quantum = true\n\n{participant}')
    assert load_config(path).ledger.post_quantum is True
    path.write_text(f'[ledger]\npost_quantum = "yes"\n\n{participant}')
    with pytest.raises(ConfigError, match="post_quantum must be bool"):
        load_config(path)
