"""Risk over the wire: a real hub (``run_server``) on a durable ledger in a temporary data directory,
real clients, the real clock. Pre-trade rejects arrive as typed 5xx RejectReasons in the OrderAck;
Admin.Kill / LiftKill / SetPositionLimit act at once and are journaled; Account.GetRisk shows the
participant its limits, margin and switches; a restart on the same data directory (which replays
the ledger before it serves) keeps every switch and limit, and rebuilds the exact state digest.

The risk configuration is the real default except where a test says otherwise, and except the
latency kill switch, raised out of the way of a loaded test machine in tests not about it (three
acks slower than 50 ms in a row would halt an asset class mid-test).
"""

from __future__ import annotations

import json

import grpc
import pytest

from compliance.risk import BreakerConfig, ParticipantRiskConfig, RateLimitConfig, RiskConfig
from hub.v1 import account_pb2
from hub.v1 import admin_pb2 as adpb
from hub.v1 import common_pb2 as cpb
from matching.types import AssetClass
from tests.risk.support import MS, TICK, M, P

QUIET = BreakerConfig(latency_threshold_ns=3_600 * 10**9)


def _risk(**changes) -> RiskConfig:
    return RiskConfig(breakers=QUIET).with_(**changes)


def _get_risk(client):
    return client.account_stub.GetRisk(account_pb2.RiskRequest(), metadata=client.metadata, timeout=10)


def _limit(state, symbol: str) -> tuple[int, int, int]:
    (lv,) = [lv for lv in state.limits if lv.symbol == symbol]
    return lv.position_limit, lv.limit_factor_bps, lv.net_position


def test_price_band_exactly_5_percent_accepted_and_one_tick_beyond_refused_over_grpc(serve) -> None:
    served = serve(_risk())
    trader = served.client("scalper-1")
    for side, price, reason in (("buy", 199_5000, 0), ("buy", 199_5100, cpb.REJECT_PRICE_BAND),
                                ("sell", 180_5000, 0), ("sell", 180_4900, cpb.REJECT_PRICE_BAND)):
        ack = trader.submit("AAPL", side, 10, price)
        assert (ack.accepted, ack.reject_reason) == (reason == 0, reason), ack
        if reason:
            assert ack.reject_text == "PRICE_BAND" and ack.order_id == 0 and not ack.executions
    # the reference moves with trades: after an MSFT trade at 430.00 the band is 408.50 .. 451.50
    assert served.client("mm-1").submit("MSFT", "sell", 5, 430_0000).accepted
    assert served.client("scalper-2").submit("MSFT", "buy", 5, 430_0000, time_in_force="ioc").executions
    assert trader.submit("MSFT", "buy", 1, 451_5000).accepted
    assert trader.submit("MSFT", "buy", 1, 451_5100).reject_reason == cpb.REJECT_PRICE_BAND
    assert trader.submit("MSFT", "sell", 1, 408_5000).accepted
    assert trader.submit("MSFT", "sell", 1, 408_4900).reject_reason == cpb.REJECT_PRICE_BAND


def test_burst_of_50_accepted_and_the_51st_refused_order_rate_over_grpc(serve) -> None:
    # the default bucket of 50, refilled at 1 a second (the default 50/s refills one every 20 ms,
    # faster than unary calls can arrive "in one instant" over the network)
    served = serve(_risk(rates=RateLimitConfig(orders_per_second=1)))
    trader = served.client("scalper-1")
    acks = [trader.submit("AAPL", "buy", 1, P - (1 + i % 20) * TICK) for i in range(51)]
    assert [a.reject_reason for a in acks] == [0] * 50 + [cpb.REJECT_ORDER_RATE]
    assert acks[-1].reject_text == "ORDER_RATE"
    assert served.client("scalper-2").submit("AAPL", "buy", 1, P - TICK).accepted, "another participant's bucket"
    assert trader.submit("MSFT", "buy", 1, M - TICK).accepted, "another instrument's bucket"


def test_set_position_limit_is_applied_shown_in_get_risk_and_kept_across_restart(serve) -> None:
    served = serve(_risk())
    op, trader = served.client("operator"), served.client("scalper-1")
    state = _get_risk(trader)
    assert _limit(state, "AAPL") == (10_000_000, 10_000, 0)  # 10 x max quantity, volatility factor 1.0
    assert (state.base_currency, state.equity) == ("USD", 10_000_000_00)

    ack = op.admin_stub.SetPositionLimit(adpb.PositionLimitRequest(participant_id="scalper-1", symbol="AAPL",
                                                                   base_limit=500), metadata=op.metadata)
    assert ack.accepted and ack.sequence == served.hub.last_sequence
    state = _get_risk(trader)
    assert _limit(state, "AAPL") == (500, 10_000, 0)
    assert trader.submit("AAPL", "buy", 501, P).reject_reason == cpb.REJECT_POSITION_LIMIT
    assert trader.submit("AAPL", "buy", 300, P).accepted
    assert trader.submit("AAPL", "buy", 201, P).reject_reason == cpb.REJECT_POSITION_LIMIT
    bad = op.admin_stub.SetPositionLimit(adpb.PositionLimitRequest(participant_id="nobody", symbol="AAPL",
                                                                   base_limit=5), metadata=op.metadata)
    assert not bad.accepted and bad.reject_reason == cpb.REJECT_FIELD_OUT_OF_RANGE

    served.restart()
    op, trader = served.client("operator"), served.client("scalper-1")
    assert _limit(_get_risk(trader), "AAPL")[0] == 500
    assert trader.submit("AAPL", "buy", 201, P).reject_reason == cpb.REJECT_POSITION_LIMIT
    assert op.admin_stub.SetPositionLimit(adpb.PositionLimitRequest(participant_id="scalper-1", symbol="AAPL",
                                                                    base_limit=0), metadata=op.metadata).accepted
    assert trader.submit("AAPL", "buy", 201, P).accepted, "0 restores the default limit"


def _kill(op, **kw) -> adpb.AdminAck:
    return op.admin_stub.Kill(adpb.KillRequest(**kw), metadata=op.metadata)


def _lift(op, **kw) -> adpb.AdminAck:
    return op.admin_stub.LiftKill(adpb.KillRequest(**kw), metadata=op.metadata)


def test_every_kill_switch_survives_a_run_server_restart_until_the_operator_lifts_it(serve) -> None:
    """Operator kill (crypto), latency anomaly (futures), drawdown (scalper-1): each refuses what it
    covers, cancels what rested there, survives a restart on the same data directory with the state
    digest rebuilt exactly, and is cleared only by Admin.LiftKill at its scope."""
    served = serve(RiskConfig(  # real latency threshold (50 ms x 3); the drawdown account: USD 100,000
        participants=(ParticipantRiskConfig(participant_id="scalper-1", collateral=(("USD", 100_000_00),)),)))
    op, s1, s2, mm, inst = (served.client(p) for p in ("operator", "scalper-1", "scalper-2", "mm-1", "inst-1"))
    # scalper-1 long 1,000 AAPL at 190; resting orders in every scope
    assert mm.submit("AAPL", "sell", 1_000, P).accepted
    assert s1.submit("AAPL", "buy", 1_000, P, time_in_force="ioc").executions
    s1_rest = s1.submit("AAPL", "sell", 10, 199_0000)
    btc_rest = mm.submit("BTC-USD", "buy", 10_000, 94_000_00)
    es_rest = s2.submit("ESZ6", "sell", 1, 6010_00)
    keep = s2.submit("MSFT", "buy", 1, M - 10 * TICK)
    assert all(a.accepted for a in (s1_rest, btc_rest, es_rest, keep))

    # operator kill of the crypto class
    ack = _kill(op, scope=adpb.KILL_ASSET_CLASS, asset_class=cpb.CRYPTO, reason="exchange outage")
    assert ack.accepted and ack.affected_orders == 1
    # latency anomaly: three acks slower than 50 ms on futures
    for _ in range(3):
        served.hub.observe_ack_latency(AssetClass.FUTURE, 60 * MS)
    # drawdown: AAPL trades 2.00 lower between two others -> scalper-1 loses USD 2,000 = 2 %
    assert s2.submit("AAPL", "sell", 1, 188_0000).accepted
    assert inst.submit("AAPL", "buy", 1, 188_0000, time_in_force="ioc").executions

    def probe() -> dict[str, int]:
        out = {
            "crypto": mm.submit("BTC-USD", "buy", 10_000, 93_000_00).reject_reason,
            "futures": s2.submit("ESZ6", "buy", 1, 5990_00).reject_reason,
            "s1 adds": s1.submit("AAPL", "buy", 1, 187_0000).reject_reason,
            "s1 closes": s1.submit("AAPL", "sell", 1_000, 195_0000).reject_reason,
            "equity": s2.submit("MSFT", "buy", 1, M - 20 * TICK).reject_reason,
        }
        for client in (mm, s1, s2):
            client.mass_cancel()
        return out

    killed = {"crypto": cpb.REJECT_KILL_SWITCH, "futures": cpb.REJECT_KILL_SWITCH, "s1 adds": cpb.REJECT_REDUCE_ONLY,
              "s1 closes": 0, "equity": 0}
    resting = {o.order_id for c in (s1, s2, mm) for o in c.open_orders()}
    assert resting == {keep.order_id}, "crypto, futures and scalper-1's resting orders were cancelled"
    assert probe() == killed
    risk = _get_risk(s1)
    assert risk.reduce_only and not risk.kill_switch
    switches = {(s["scope"], s["target"], s["reason"]) for s in json.loads(risk.detail_json)["kill_switches"]}
    assert switches == {("ASSET_CLASS", "CRYPTO", "OPERATOR"), ("ASSET_CLASS", "FUTURE", "LATENCY"),
                        ("PARTICIPANT", "scalper-1", "DAILY_LOSS")}
    with pytest.raises(grpc.RpcError) as denied:
        _lift(s1, scope=adpb.KILL_PARTICIPANT, participant_id="scalper-1")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    digest = served.hub.state_digest_bytes()
    views = {p: served.hub.risk.participant_view(0, p) for p in ("scalper-1", "scalper-2", "mm-1")}
    served.restart()
    assert served.hub.recovery.checkpoint_verified
    assert served.hub.state_digest_bytes() == digest, "the restarted hub rebuilt the exact state"
    assert {p: served.hub.risk.participant_view(0, p) for p in views} == views
    op, s1, s2, mm = (served.client(p) for p in ("operator", "scalper-1", "scalper-2", "mm-1"))
    assert probe() == killed

    assert _lift(op, scope=adpb.KILL_ASSET_CLASS, asset_class=cpb.CRYPTO).accepted
    assert _lift(op, scope=adpb.KILL_ASSET_CLASS, asset_class=cpb.FUTURE).accepted
    assert probe() == {**killed, "crypto": 0, "futures": 0}
    assert _lift(op, scope=adpb.KILL_PARTICIPANT, participant_id="scalper-1").accepted
    assert probe() == {k: 0 for k in killed}
    served.restart()
    op, s1, s2, mm = (served.client(p) for p in ("operator", "scalper-1", "scalper-2", "mm-1"))
    assert probe() == {k: 0 for k in killed}
    assert json.loads(_get_risk(s1).detail_json)[
        "kill_switches"] == []


def test_admin_kill_rejects_a_bad_scope_and_a_hub_kill_blocks_everyone(serve) -> None:
    served = serve(_risk())
    op, s1 = served.client("operator"), served.client("scalper-1")
    for bad in ({}, {"scope": adpb.KILL_ASSET_CLASS}, {"scope": adpb.KILL_PARTICIPANT, "participant_id": "nobody"}):
        ack = _kill(op, **bad)
        assert not ack.accepted and ack.reject_reason == cpb.REJECT_FIELD_OUT_OF_RANGE, bad
    rest = s1.submit("EURUSD", "buy", 1_000, 1_08000)
    assert rest.accepted
    ack = _kill(op, scope=adpb.KILL_HUB, reason="drill")
    assert ack.accepted and ack.affected_orders == 1
    assert s1.submit("EURUSD", "buy", 1_000, 1_08000).reject_reason == cpb.REJECT_KILL_SWITCH
    assert served.client("mm-1").submit("ETH-USD", "sell", 100_000, 3_500_00).reject_reason == cpb.REJECT_KILL_SWITCH
    state = _get_risk(s1)
    assert state.kill_switch
    ((switch),) = json.loads(state.detail_json)["kill_switches"]
    assert (switch["scope"], switch["note"], switch["operator"]) == ("HUB", "drill", "operator")
    assert _lift(op, scope=adpb.KILL_HUB).accepted
    assert s1.submit("EURUSD", "buy", 1_000, 1_08000).accepted
    assert not _get_risk(s1).kill_switch
