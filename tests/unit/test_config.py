"""Hub configuration: embedded defaults work, files load, bad files fail with a clear message."""

from __future__ import annotations

import pytest

from hub.config import ConfigError, HubConfig, ParticipantClass, Role, hash_token, load_config


def test_default_config_is_valid_and_listens_on_loopback():
    config = HubConfig.default()
    assert config.network.host == "127.0.0.1"
    assert {p.id for p in config.participants} >= {"scalper-1", "inst-1", "mm-1", "operator", "regulator"}
    assert all(len(p.token_sha256) == 64 for p in config.participants)
    assert hash_token("dev-scalper-1") in config.participant_by_token_hash()


GOOD = f"""
[network]
port = 6000
max_workers = 8

[limits]
max_quotes_per_message = 10

[[participant]]
id = "alice"
class = "scalper"
token_sha256 = "{hash_token('alice-secret')}"
accounts = [11, 12]
stp_mode = "cancel_both"

[[participant]]
id = "ops"
role = "operator"
token_sha256 = "{hash_token('ops-secret')}"
"""


def test_config_file_loads(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.network.port == 6000 and config.network.max_workers == 8
    assert config.limits.max_quotes_per_message == 10
    alice = config.participants[0]
    assert alice.participant_class == ParticipantClass.SCALPER and alice.accounts == (11, 12)
    assert config.participants[1].role == Role.OPERATOR
    assert len(config.instruments) == 8  # built-in instruments when none are configured


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t.replace("port = 6000", "port = 70000"), "network.port"),
    (lambda t: t.replace("port = 6000", "port = \"6000\""), "port must be int"),
    (lambda t: t.replace("max_workers = 8", "max_workers = 8\nbogus = 1"), "unknown keys ['bogus']"),
    (lambda t: t.replace("max_workers = 8", "max_workers = 8\ngc_freeze_interval_ms = -1"),
     "gc_freeze_interval_ms must be 0 (off) or positive"),
    (lambda t: t.replace('class = "scalper"', 'class = "whale"'), "'whale' is not a valid"),
    (lambda t: t.replace("accounts = [11, 12]", "accounts = [11, 11]"), "account 11 already belongs"),
    (lambda t: t.replace("accounts = [11, 12]", "accounts = []"), "needs at least one account"),
    (lambda t: t.replace('role = "operator"', 'role = "operator"\naccounts = [5]'), "cannot hold trading accounts"),
    (lambda t: t.replace(hash_token("ops-secret"), hash_token("alice-secret")), "shares its token"),
    (lambda t: t.replace(hash_token("ops-secret"), "abc"), "64 lowercase hex"),
    (lambda t: t + "\n[[instrument]]\nsymbol = \"X\"\n", "missing fields"),
    (lambda t: t.replace("[limits]", "[limitz]"), "unknown top-level keys"),
])
def test_bad_config_is_refused_with_a_clear_message(tmp_path, mutation, message):
    path = tmp_path / "hub.toml"
    path.write_text(mutation(GOOD))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)


def test_unreadable_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
