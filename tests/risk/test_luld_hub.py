"""LULD-style pauses through the hub: a best bid at the upper band edge (or offer at the lower) puts
the instrument in limit state; if the quote is still there 15 s later the instrument pauses for
5 minutes (orders refused INSTRUMENT_PAUSED from the exact instant, tick or not), market data
says so, and it resumes on time. Every transition is journaled as a risk event.
"""

from __future__ import annotations

from compliance.risk import RiskReject
from tests.risk.support import AAPL, SEC, TICK, P, RiskHub, kinds

UPPER = 199_5000  # AAPL: 190.0000 + 5 %


def _statuses(sub) -> list[bool]:
    updates, _ = sub.take(0.01)
    return [u.status.halted for u in updates if u.WhichOneof("body") == "status"]


def test_a_quote_at_the_band_edge_for_15s_pauses_the_instrument_for_5_minutes(make_hub) -> None:
    rh: RiskHub = make_hub()
    sub, _ = rh.hub.subscribe([AAPL])
    since = rh.clock.now
    edge = rh.buy("mm-1", "AAPL", UPPER, 10)
    assert edge.accepted
    (entered,) = [e for e in rh.risk_events() if e["type"] == "limit_state_entered"]
    assert (entered["bid"], entered["upper"], entered["pause_at"]) == (UPPER, UPPER, since + 15 * SEC)

    rh.clock.now = since + 15 * SEC - 1
    assert rh.buy("scalper-1", "AAPL", P, 1).accepted, "limit state alone refuses nothing"
    rh.clock.now = since + 15 * SEC
    assert rh.buy("scalper-1", "AAPL", P, 1).reason == RiskReject.INSTRUMENT_PAUSED, "paused on time, before any tick"
    assert rh.sell("scalper-2", "AAPL", UPPER, 1).reason == RiskReject.INSTRUMENT_PAUSED
    assert _statuses(sub) == []
    rh.hub.risk_tick()
    assert kinds(rh.risk_events())[-1] == "instrument_paused"
    assert _statuses(sub) == [True], "market data tells everyone"
    assert rh.replace("mm-1", "AAPL", edge.order_id, P, 10).reason == RiskReject.INSTRUMENT_PAUSED
    assert rh.cancel("mm-1", "AAPL", edge.order_id).accepted, "cancels still work in a pause"
    assert rh.buy("scalper-1", "MSFT", 419_0000, 1).accepted, "other instruments trade on"

    rh.clock.now = since + 315 * SEC - 1
    assert rh.buy("scalper-1", "AAPL", P, 1).reason == RiskReject.INSTRUMENT_PAUSED
    rh.clock.now = since + 315 * SEC
    assert rh.buy("scalper-1", "AAPL", P - TICK, 1).accepted
    rh.hub.risk_tick()
    assert kinds(rh.risk_events())[-1] == "instrument_resumed"
    assert _statuses(sub) == [False]
    rh.hub.unsubscribe(sub)


def test_a_quote_that_comes_back_inside_within_15s_exits_the_limit_state(make_hub) -> None:
    rh: RiskHub = make_hub()
    since = rh.clock.now
    edge = rh.buy("mm-1", "AAPL", UPPER, 10)
    rh.clock.now = since + 15 * SEC - 1
    assert rh.replace("mm-1", "AAPL", edge.order_id, UPPER - TICK, 10).accepted
    assert kinds(rh.risk_events()) == ["limit_state_entered", "limit_state_exited"]
    rh.clock.now = since + 15 * SEC
    rh.hub.risk_tick()
    assert rh.buy("scalper-1", "AAPL", P, 1).accepted
    assert kinds(rh.risk_events()) == ["limit_state_entered", "limit_state_exited"]
