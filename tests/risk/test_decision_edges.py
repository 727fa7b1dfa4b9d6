"""Edges of the hub's risk decisions found by review: a latency breaker that must measure the
hub's own delay (not a slow ledger's commit of a reject), a hub time that never goes back when the
wall clock does, and a replace that only cuts an order, which no position limit refuses."""

from __future__ import annotations

import json

from compliance.fees import Month
from compliance.risk.events import Scope
from hub.core import Hub
from hub.journal import InMemoryJournal
from tests.risk.support import TICK, FakeClock, P, RiskHub, hub_config


class _SlowCommit(InMemoryJournal):
    """Every commit takes 60 ms of hub time (a slow fdatasync)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        self.clock.advance(60_000_000)


def test_refused_orders_on_a_slow_ledger_do_not_trip_the_latency_breaker() -> None:
    clock = FakeClock()
    rh = RiskHub(hub_config(), clock)
    rh.hub.scheduler.close()
    rh.hub = Hub(rh.config, _SlowCommit(clock), clock=clock)
    try:
        for _ in range(3):
            refused = rh.buy("scalper-1", "AAPL", P * 2, 1)  # far outside the price band
            assert not refused.accepted and refused.text == "PRICE_BAND"
        assert rh.hub.risk.kill_mode(Scope.ASSET_CLASS, "EQUITY") == 0  # nothing halted the class
    finally:
        rh.hub.scheduler.close()


def test_hub_time_never_goes_back_when_the_wall_clock_does() -> None:
    february = Month(2026, 2).start_ns
    clock = FakeClock(february + 1_000_000)
    rh = RiskHub(hub_config(), clock)
    rh.trade("AAPL", P, 1, "inst-1", "scalper-1")
    clock.now = february - 1_000_000  # NTP steps the clock back into January
    maker = rh.sell("scalper-1", "AAPL", P, 1)
    taker = rh.buy("inst-1", "AAPL", P, 1)  # the fee engine would have raised going back a month
    assert maker.accepted and taker.accepted and len(taker.trades()) == 1
    assert taker.outcome.ts >= february + 1_000_000
    rh.sell("scalper-1", "AAPL", P + TICK, 1)
    rh.kill(Scope.PARTICIPANT, "scalper-1")  # its record's time and its cancel steps' too
    entries = rh.hub.journal.entries()
    times = [e.ts for e in entries]
    assert times == sorted(times)
    kill = next(e for e in entries if e.detail and b'"risk_kill"' in e.detail)
    assert json.loads(kill.detail)["at"] >= february + 1_000_000


def test_a_replace_that_cuts_an_order_passes_a_position_limit_lowered_below_it() -> None:
    rh = RiskHub(hub_config())
    order = rh.buy("scalper-1", "AAPL", P - 10 * TICK, 500).order_id
    rh.hub.set_position_limit(rh.who["operator"], "scalper-1", 1, 100)
    assert rh.replace("scalper-1", "AAPL", order, P - 10 * TICK, 400).reason == 0
    assert rh.replace("scalper-1", "AAPL", order, P - 10 * TICK, 450).text == "POSITION_LIMIT"  # adds: refused


def test_a_fee_statement_is_computed_without_holding_the_sequencer(monkeypatch) -> None:
    """Any participant may ask for its statement; scanning every fee record with the sequencer
    held stopped all order entry meanwhile (270 ms with a million records)."""
    import threading

    import hub.core as core

    rh = RiskHub(hub_config())
    rh.trade("AAPL", P, 1, "inst-1", "scalper-1")
    scanning, free = threading.Event(), []

    def try_sequencer() -> None:
        got = rh.hub._lock.acquire(timeout=1)
        free.append(got)
        if got:
            rh.hub._lock.release()

    def slow_statement(*args, **kwargs):
        scanning.set()
        other = threading.Thread(target=try_sequencer)  # an order arriving meanwhile
        other.start()
        other.join(5)
        return "statement"

    monkeypatch.setattr(core, "participant_statement", slow_statement)
    result = []
    reader = threading.Thread(target=lambda: result.append(rh.hub.statement("inst-1", Month(2026, 1))))
    reader.start()
    reader.join(10)
    assert scanning.is_set() and result == ["statement"] and free == [True]


def test_a_market_order_never_trades_outside_the_price_band() -> None:
    """It is decided at the band edge and, price-protected, sent to the engine as a limit order
    there: an ask a move of the reference left outside the band is not hit at its own price."""
    from hub.v1 import common_pb2 as cpb
    from matching.types import NewOrder, OrderType, decode_commands
    from tests.risk.support import SEC

    rh = RiskHub(hub_config())
    far = P * 104 // 100 // TICK * TICK  # +4 %: inside the 5 % band when it entered
    assert rh.sell("mm-1", "AAPL", far, 5).accepted
    rh.clock.advance(SEC)
    rh.trade("AAPL", P * 96 // 100 // TICK * TICK, 1, "scalper-1", "scalper-2")  # the reference drops 4 %
    ref = rh.hub.risk.reference_price(1)
    assert far > ref * 105 // 100  # the resting ask is now outside the band
    market = rh.buy("inst-1", "AAPL", 0, 5, order_type=cpb.MARKET, tif=cpb.IOC)
    assert market.accepted and market.trades() == []
    assert rh.hub.risk.reference_price(1) == ref
    (command,) = decode_commands(rh.hub.journal.entries()[-1].commands)
    assert type(command) is NewOrder and command.order_type == OrderType.LIMIT
    assert command.price == rh.hub.risk.protected_price(1, cpb.BUY) <= ref * 105 // 100
    inside = rh.sell("mm-1", "AAPL", command.price, 5)  # at the band edge it trades, as a market order should
    assert inside.accepted
    assert [t.price for t in rh.buy("inst-1", "AAPL", 0, 5, order_type=cpb.MARKET, tif=cpb.IOC).trades()] == [
        command.price]


def test_pre_trade_checks_use_hub_time_so_a_clock_step_back_does_not_reopen_a_paused_instrument() -> None:
    from compliance.risk import RiskReject
    from tests.risk.support import SEC

    rh = RiskHub(hub_config())
    since = rh.clock.now
    assert rh.buy("mm-1", "AAPL", 199_5000, 10).accepted  # a bid at the band's edge: a limit state
    rh.clock.now = since + 15 * SEC  # held long enough: the instrument pauses
    assert rh.buy("scalper-1", "AAPL", P, 1).reason == RiskReject.INSTRUMENT_PAUSED
    rh.clock.now = since + 15 * SEC - 3600 * SEC  # NTP steps the wall clock back an hour
    assert rh.buy("scalper-1", "AAPL", P, 1).reason == RiskReject.INSTRUMENT_PAUSED
