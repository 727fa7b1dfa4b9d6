"""Cross-margining through the hub: one account across asset classes, positions built by trades
through the real order path. A hedge across equities and futures is accepted with the 50 %
inter-class credit where per-class margin refuses it; an order that is truly under-margined is
refused; a falling market raises a margin call, and when its grace ends the account goes
reduce-only and its resting orders are cancelled, in that order, all journaled.

Default scans: equities +-15 %, futures +-6 % (ESZ6 6000.00 x 50 = USD 300,000 a contract);
initial = 1.10 x maintenance. Money in USD cents.
"""

from __future__ import annotations

import pytest

from compliance.risk import BreakerConfig, MarginConfig, ParticipantRiskConfig, RiskConfig, RiskReject
from ledger.records import risk_cancel_orders
from tests.risk.support import BUY, ES, SEC, SELL, RiskHub, kinds

R = RiskReject
ME = "scalper-1"


def _hedger(offsets: bool) -> RiskConfig:
    return RiskConfig(margin=MarginConfig() if offsets else MarginConfig(offsets=()),
                      participants=(ParticipantRiskConfig(participant_id=ME, collateral=(("USD", 50_000_00),)),))


def _long_aapl(make_hub, offsets: bool) -> RiskHub:
    """Long 1,579 AAPL at 190 (scan USD 45,001.50, initial 49,501.65) on USD 50,000 of collateral."""
    rh = make_hub(_hedger(offsets))
    rh.trade("AAPL", 190_0000, 1_579, ME, "mm-1")
    view = rh.view(ME)
    assert (view.equity, view.maintenance_requirement, view.initial_requirement) == (50_000_00, 45_001_50, 49_501_65)
    return rh


@pytest.mark.parametrize("offsets, side, qty, then", [
    (True, SELL, 1, 0),  # the hedge: initial 34,651.65 with the credit <= 50,000
    (False, SELL, 1, R.MARGIN),  # per-class: 49,501.65 + 19,800 = 69,301.65 > 50,000
    (True, BUY, 1, R.MARGIN),  # same direction: no credit
    (True, SELL, 2, R.MARGIN),  # over-hedged: the second contract is naked, 54,450.50 > 50,000
], ids=["hedge accepted with cross-margin", "same hedge refused under per-class margin",
        "same-direction future refused", "over-hedge refused"])
def test_cross_class_hedge_through_the_hub(make_hub, offsets: bool, side: int, qty: int, then: int) -> None:
    rh = _long_aapl(make_hub, offsets)
    assert rh.order(ME, "ESZ6", side, 6000_00, qty).reason == then


def test_hedged_account_after_the_fill_and_what_it_can_still_do(make_hub) -> None:
    rh = _long_aapl(make_hub, True)
    rh.trade("ESZ6", 6000_00, 1, "mm-1", ME)  # the hedge fills: short 1 ESZ6
    view = rh.view(ME)
    # scans 45,001.50 (AAPL) and 18,000 (ES); credits 50 % of each matched leg
    assert (view.maintenance_requirement, view.initial_requirement, view.equity) == (31_501_50, 34_651_65, 50_000_00)
    assert [lv.net_position for lv in view.limits if lv.instrument_id in (1, ES)] == [1_579, -1]
    # more AAPL: the future's USD 300,000 of delta stays matched, so the added shares carry their full
    # scan: initial = 1.10 x (28.50 x shares - 13,500) <= 50,000 up to 2,068 shares, i.e. 489 more
    assert rh.buy(ME, "AAPL", 190_0000, 490).reason == R.MARGIN
    assert rh.buy(ME, "AAPL", 190_0000, 489).accepted
    assert rh.buy(ME, "AAPL", 190_0000, 1).reason == R.MARGIN, "the resting 489 count against the next order"
    # unwinding the future (the hedge) is reducing, never refused for margin, even now
    assert rh.buy(ME, "ESZ6", 6000_00, 1).accepted
    rh.hub.risk.verify()


def test_margin_call_then_reduce_only_fire_in_order_and_cancel_resting_orders(make_hub) -> None:
    grace = 600 * SEC
    rh: RiskHub = make_hub(RiskConfig(
        participants=(ParticipantRiskConfig(participant_id=ME, collateral=(("USD", 5_000_00),)),),
        breakers=BreakerConfig(max_daily_loss_bps=10_000)))  # the drawdown breaker out of the way
    rh.trade("AAPL", 190_0000, 100, ME, "mm-1")  # long 100: maintenance 2,850
    resting = rh.sell(ME, "AAPL", 199_0000, 10)
    assert resting.accepted
    # the market walks down within the band, one trade a second between two others
    for price in (181_0000, 172_0000):
        rh.clock.advance(SEC)
        rh.trade("AAPL", price, 1, "scalper-2", "inst-1")
        assert not rh.view(ME).margin_call
    rh.clock.advance(SEC)
    called_at = rh.clock.now
    rh.trade("AAPL", 164_0000, 1, "scalper-2", "inst-1")  # equity 2,400 < maintenance 2,460
    calls = [e for e in rh.risk_events() if e["type"] == "margin_call"]
    assert [(c["participant_id"], c["equity"], c["maintenance"], c["reduce_only_at"]) for c in calls] == [
        (ME, 2_400_00, 2_460_00, called_at + grace)]
    view = rh.view(ME)
    assert view.margin_call and not view.reduce_only

    # during the grace adding risk fails on margin, reducing passes
    assert rh.buy(ME, "AAPL", 164_0000, 1).reason == R.MARGIN
    rh.clock.now = called_at + grace - 1
    journaled = len(rh.admin_details())
    rh.hub.risk_tick()
    assert len(rh.admin_details()) == journaled, "a tick that changes nothing journals nothing"
    assert rh.resting_ids(ME) == {resting.order_id}

    # the grace ends: reduce-only, and the resting order is cancelled
    rh.clock.now = called_at + grace
    rh.hub.risk_tick()
    tail = rh.admin_details()[journaled:]
    assert [d["action"] for _, d in tail] == ["risk_tick", "risk_events", "risk_cancel", "risk_settle"]
    assert kinds(tail[1][1]["events"]) == ["reduce_only_started", "cancel_orders"]
    assert tail[1][1]["events"][1]["order_ids"] == [resting.order_id]
    assert risk_cancel_orders(tail[2][1]) == [resting.order_id], "carried out as one compact risk-cancel step"
    assert kinds([e for e in rh.risk_events() if e.get("participant_id", e.get("target")) == ME]) == [
        "margin_call", "reduce_only_started", "cancel_orders"]
    assert not rh.resting_ids(ME)
    assert rh.view(ME).reduce_only

    assert rh.buy(ME, "AAPL", 164_0000, 1).reason == R.REDUCE_ONLY
    assert rh.sell(ME, "AAPL", 172_0000, 101).reason == R.REDUCE_ONLY
    closing = rh.sell(ME, "AAPL", 172_0000, 100)
    assert closing.accepted

    # the price recovers: equity 3,000 >= maintenance 2,550, the call and reduce-only end
    rh.clock.advance(SEC)
    rh.trade("AAPL", 170_0000, 1, "scalper-2", "inst-1")
    assert kinds(rh.risk_events())[-2:] == ["margin_call_resolved", "reduce_only_ended"]
    view = rh.view(ME)
    assert not view.margin_call and not view.reduce_only
    assert rh.buy(ME, "AAPL", 165_0000, 1).accepted
    rh.hub.risk.verify()
