"""A hub restarted with another risk configuration replays its ledger and goes on with the new one.

The CONFIG record carries the risk configuration; replay applies each at its record
(``RiskEngine.reconfigure``), so what was decided under the old limits replays under them, and the
state after the change is the same live and on every later replay. Before, any change of the risk
configuration stopped the restart: its fingerprint is in the state digest, and the whole ledger
replayed under the new one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from compliance.risk import (
    InstrumentRiskConfig,
    ParticipantRiskConfig,
    RiskConfig,
    RiskConfigError,
    risk_config_from_json,
    span_scenarios,
)
from hub.auth import Identity
from hub.config import HubConfig
from hub.core import OrderSpec
from hub.server import open_ledger_journal, run_server
from hub.v1 import common_pb2 as cpb
from matching.types import AssetClass

AAPL = 1


def _base(tmp_path) -> HubConfig:
    return replace(HubConfig.default().with_network(host="127.0.0.1", port=0), data_dir=str(tmp_path))


def _with_risk(config: HubConfig, risk: RiskConfig) -> HubConfig:
    return replace(config, risk=risk.validated(config.instruments)).validated()


def _activity(hub, config: HubConfig) -> None:
    """A position for scalper-1 and inst-1, and a resting order of each."""
    ids = {p.id: Identity.of(p) for p in config.participants}
    for who, side, price, qty in (("scalper-1", cpb.SELL, 190_0000, 10), ("inst-1", cpb.BUY, 190_0000, 10),
                                  ("scalper-1", cpb.SELL, 191_0000, 5), ("inst-1", cpb.BUY, 189_0000, 5)):
        assert hub.submit_order(ids[who], OrderSpec("AAPL", side, cpb.LIMIT, cpb.GTC, price, qty))[1] == 0


def _collateral(risk: RiskConfig, pid: str, usd: int) -> RiskConfig:
    return risk.with_(participants=(ParticipantRiskConfig(participant_id=pid, collateral=(("USD", usd),),
                                                          position_limits=((AAPL, 40),)),))


def test_risk_configuration_changes_across_restarts_replay_and_take_effect(tmp_path) -> None:
    base = _base(tmp_path)
    first = _with_risk(base, _collateral(RiskConfig(), "scalper-1", 5_000_000_00))
    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):
        _activity(hub, first)
        before = hub.risk.margin("scalper-1")
        assert hub.risk.position_limit("scalper-1", AAPL) == 40
        assert hub.risk.position("inst-1", AAPL) == (10, 5, 0)

    risk = first.risk.with_(
        rates=replace(first.risk.rates, orders_per_second=20, order_burst=20),
        instruments=(InstrumentRiskConfig(instrument_id=AAPL, price_band_bps=200, base_position_limit=60_000),),
        participants=(ParticipantRiskConfig(participant_id="scalper-1", collateral=(("USD", 7_000_000_00),)),))
    second = _with_risk(base, risk)
    with run_server(second, open_ledger_journal(second), grace=0.5) as (hub, _):
        assert hub.risk.config == second.risk
        hub.risk.verify()  # every cache recomputed from the primary state agrees
        assert hub.risk.position("inst-1", AAPL) == (10, 5, 0)  # the state carried over
        after = hub.risk.margin("scalper-1")
        assert after.collateral == before.collateral + 2_000_000_00  # like a deposit of the difference
        assert after.day_start_equity == before.day_start_equity + 2_000_000_00  # which is no profit
        assert after.pnl == before.pnl
        assert hub.risk.position_limit("scalper-1", AAPL) == hub.risk.position_limit("inst-1", AAPL) == 60_000
        ids = {p.id: Identity.of(p) for p in second.participants}
        refused = hub.submit_order(ids["inst-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, 180_0000, 5))
        assert refused[1] != 0  # 190 - 5 %: inside the old band, outside the new 2 %
        _activity(hub, second)
        digest = hub.state_digest_bytes()

    with run_server(second, open_ledger_journal(second), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest  # old segment under the old config, then the change

    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):  # and back again
        assert hub.risk.config == first.risk
        hub.risk.verify()
        assert hub.risk.margin("scalper-1").collateral == before.collateral
        assert hub.risk.position_limit("scalper-1", AAPL) == 40
        digest = hub.state_digest_bytes()
    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest


def test_raised_requirements_margin_call_at_the_restart_and_replay(tmp_path) -> None:
    """Requirements raised under a position: the margin call the new configuration causes is made
    at the CONFIG record, and with no grace its reduce-only cancels follow, the same on replay."""
    base = _base(tmp_path)
    first = _with_risk(base, _collateral(RiskConfig(), "inst-1", 1_000_00))  # USD 1,000 against USD 1,900 of AAPL
    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):
        _activity(hub, first)
        assert hub.risk.margin("inst-1").margin_call_since == -1

    margin = first.risk.margin
    classes = tuple(replace(c, scenarios=span_scenarios(10_000, extreme_multiple=1)) if c.asset_class == AssetClass.EQUITY
                    else c for c in margin.classes)  # AAPL may lose all of its value
    harsh = _with_risk(base, first.risk.with_(margin=replace(margin, classes=classes, margin_call_grace_ns=0)))
    with run_server(harsh, open_ledger_journal(harsh), grace=0.5) as (hub, _):
        view = hub.risk.margin("inst-1")
        assert view.margin_call_since > 0 and view.equity < view.maintenance
        assert hub.risk.position("inst-1", AAPL) == (10, 0, 0)  # its resting buy was cancelled: reduce-only
        hub.risk.verify()
        digest = hub.state_digest_bytes()
    with run_server(harsh, open_ledger_journal(harsh), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest


def test_the_recorded_risk_configuration_reads_back_exactly() -> None:
    import json

    risk = _collateral(RiskConfig(), "scalper-1", 1).with_(
        instruments=(InstrumentRiskConfig(instrument_id=AAPL, max_order_quantity=5),))
    for config in (RiskConfig(), risk):
        back = risk_config_from_json(json.loads(json.dumps(config.to_json())))
        assert back == config and back.fingerprint() == config.fingerprint()
    broken = json.loads(json.dumps(risk.to_json()))
    broken["rates"]["orders_per_second"] = "fast"
    with pytest.raises(RiskConfigError):
        risk_config_from_json(broken)
    del broken["rates"]
    with pytest.raises(RiskConfigError):
        risk_config_from_json(broken)


def test_collateral_moved_to_another_currency_whose_old_rate_is_dropped(tmp_path) -> None:
    """A participant's configured collateral moves from CHF to USD and the CHF rate goes: its CHF
    balance falls to zero and goes with it. Before, the zero balance stayed, the CONFIG record was
    journaled and then failed to apply (no CHF rate), and no later start could replay it."""
    base = _base(tmp_path)
    chf = RiskConfig(participants=(ParticipantRiskConfig(participant_id="scalper-1", collateral=(
        ("CHF", 5_000_000_00),)),))
    first = _with_risk(base, chf)
    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):
        _activity(hub, first)
    margin = chf.margin
    second = _with_risk(base, chf.with_(
        participants=(ParticipantRiskConfig(participant_id="scalper-1", collateral=(("USD", 5_000_000_00),)),),
        margin=replace(margin, fx_rates=tuple(r for r in margin.fx_rates if r[0] != "CHF"))))
    with run_server(second, open_ledger_journal(second), grace=0.5) as (hub, _):
        assert hub.risk.margin("scalper-1").collateral == 5_000_000_00
        hub.risk.verify()
        digest = hub.state_digest_bytes()
    with run_server(second, open_ledger_journal(second), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest
    with run_server(first, open_ledger_journal(first), grace=0.5) as (hub, _):  # and back
        assert hub.risk.config == first.risk and hub.recovery.checkpoint_verified


def test_a_ledger_begun_before_config_records_carried_risk_takes_a_changed_one(tmp_path, monkeypatch) -> None:
    """Its first upgraded start replayed the older records under its own risk configuration and
    recorded that one: replay runs those records under it as well, so a later change still starts."""
    import hub.recovery

    base = _base(tmp_path)
    first = _with_risk(base, _collateral(RiskConfig(), "scalper-1", 5_000_000_00))
    legacy = hub.recovery.config_detail

    def without_risk(h) -> bytes:
        import json

        detail = json.loads(legacy(h))
        del detail["risk"]
        return json.dumps(detail, sort_keys=True, separators=(",", ":")).encode()

    with monkeypatch.context() as patched:
        patched.setattr(hub.recovery, "config_detail", without_risk)
        with run_server(first, open_ledger_journal(first), grace=0.5) as (running, _):
            _activity(running, first)
    with run_server(first, open_ledger_journal(first), grace=0.5) as (running, _):  # the upgraded start
        assert running.recovery.checkpoint_verified
    second = _with_risk(base, first.risk.with_(rates=replace(first.risk.rates, orders_per_second=20)))
    with run_server(second, open_ledger_journal(second), grace=0.5) as (running, _):
        assert running.risk.config == second.risk and running.recovery.checkpoint_verified
        digest = running.state_digest_bytes()
    with run_server(second, open_ledger_journal(second), grace=0.5) as (running, _):
        assert running.state_digest_bytes() == digest
