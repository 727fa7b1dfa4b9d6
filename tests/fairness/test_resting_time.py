"""Minimum resting time: cancels and replaces of an order younger than the minimum, at the boundary.

In-process hub on a fake clock, participant_class preset (scalper orders must rest 50 us) unless
a test says otherwise. An order's age counts from the hub time it entered the book (its
sequencing time), the cancel's from the hub time it arrived. Reject mode refuses a too-early
cancel / replace with REJECT_MIN_RESTING_TIME (601), journaled as a gateway reject; hold mode
keeps it and applies it at exactly entry + 50 us. Nothing stops the order being filled meanwhile.
"""

from __future__ import annotations

import pytest

from hub.fairness import FairnessConfig, FairnessReject, Preset, RestingMode
from hub.journal import EntryKind
from hub.v1 import common_pb2 as cpb
from matching.types import Cancel, Cancelled, RejectReason, Replace
from tests.fairness.support import TICK, InProcessHub, P, command_of, detail, not_done_after, trades

MIN_REST = 50_000
BOUNDARY = [(49_999, False), (50_000, True), (50_001, True)]


def _rest(h: InProcessHub, participant: str = "scalper-1", quantity: int = 10, post_only: bool = False):
    """A resting sell at P entered now (no floor applies to it): its Result."""
    r = h.call(h.submit, participant, "AAPL", cpb.SELL, quantity, P, post_only=post_only)
    assert r.reason == 0 and r.ts == h.clock.now, r
    assert r.order_id in h.resting("AAPL")
    return r


def _amend(h: InProcessHub, action: str, order_id: int, participant: str = "scalper-1"):
    if action == "cancel":
        return h.cancel, (participant, "AAPL", order_id)
    return h.replace, (participant, "AAPL", order_id, P + TICK, 10)


def _assert_applied(h: InProcessHub, r, action: str, order_id: int, arrival: int, released: int) -> None:
    assert r.reason == 0, r
    entry = h.entry(r.seq)
    assert entry.kind == EntryKind.ENGINE
    assert (entry.arrival_ns, entry.ts) == (arrival, released)
    cmd = command_of(entry)
    assert type(cmd) is (Cancel if action == "cancel" else Replace) and cmd.order_id == order_id
    if action == "cancel":
        assert order_id not in h.resting("AAPL")
    else:
        assert h.resting("AAPL")[order_id].price == P + TICK


def _assert_untouched(h: InProcessHub, order_id: int) -> None:
    resting = h.resting("AAPL")
    assert order_id in resting and resting[order_id].price == P and resting[order_id].remaining == 10


# -- REJECT MODE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "replace"])
@pytest.mark.parametrize(("age", "allowed"), BOUNDARY)
def test_reject_mode_refuses_amendments_younger_than_50us_and_accepts_them_from_50us(make_hub, action, age, allowed):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.REJECT))
    order = _rest(h)
    h.clock.now = order.ts + age
    fn, args = _amend(h, action, order.order_id)
    r = h.call(fn, *args)
    if allowed:
        _assert_applied(h, r, action, order.order_id, arrival=order.ts + age, released=order.ts + age)
        return
    assert r.outcome is None
    assert r.reason == FairnessReject.MIN_RESTING_TIME == cpb.REJECT_MIN_RESTING_TIME == 601
    assert f"rested {age} ns of the required {MIN_REST} ns" in r.text
    rejected = h.last_entry()
    assert rejected.kind == EntryKind.GATEWAY_REJECT
    assert detail(rejected)["reason"] == 601 and detail(rejected)["request"] == action
    assert detail(rejected)["order_id"] == order.order_id
    assert rejected.arrival_ns == order.ts + age
    _assert_untouched(h, order.order_id)


def test_reject_mode_accepts_the_same_cancel_once_the_order_has_rested(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.REJECT))
    order = _rest(h)
    h.clock.now = order.ts + 1
    assert h.call(h.cancel, "scalper-1", "AAPL", order.order_id).reason == 601
    h.clock.now = order.ts + MIN_REST
    r = h.call(h.cancel, "scalper-1", "AAPL", order.order_id)
    _assert_applied(h, r, "cancel", order.order_id, arrival=order.ts + MIN_REST, released=order.ts + MIN_REST)


# -- HOLD MODE -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "replace"])
def test_hold_mode_holds_an_amendment_arriving_1ns_early_and_applies_it_at_exactly_50us(make_hub, action):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    h.clock.now = order.ts + 49_999
    fn, args = _amend(h, action, order.order_id)
    held = h.start_held(fn, *args)
    h.release(order.ts + 49_999)  # nothing is due yet
    assert not_done_after(held) and h.hub.scheduler.pending == 1
    _assert_untouched(h, order.order_id)
    h.release(order.ts + MIN_REST)
    r = held.result(timeout=10)
    _assert_applied(h, r, action, order.order_id, arrival=order.ts + 49_999, released=order.ts + MIN_REST)
    assert h.hub.scheduler.pending == 0


@pytest.mark.parametrize("action", ["cancel", "replace"])
@pytest.mark.parametrize("age", [50_000, 50_001])
def test_hold_mode_applies_an_amendment_of_a_rested_order_at_once(make_hub, action, age):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    h.clock.now = order.ts + age
    fn, args = _amend(h, action, order.order_id)
    r = h.call(fn, *args)  # fails (times out) if it were held: the clock does not move
    _assert_applied(h, r, action, order.order_id, arrival=order.ts + age, released=order.ts + age)


def test_hold_mode_never_rejects_with_min_resting_time(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    held = h.start_held(h.cancel, "scalper-1", "AAPL", order.order_id)  # age 0
    h.release(order.ts + MIN_REST)
    assert held.result(timeout=10).reason == 0
    assert not [e for e in h.entries() if e.kind == EntryKind.GATEWAY_REJECT]


# -- FILLS OF TOO-YOUNG ORDERS -------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(RestingMode))
def test_an_order_younger_than_the_minimum_is_still_filled(make_hub, mode):
    h = make_hub(FairnessConfig(min_resting_mode=mode))
    order = _rest(h)
    h.clock.now = order.ts + 10_000
    take = h.call(h.submit, "mm-1", "AAPL", cpb.BUY, 10, P)
    [trade] = trades(take)
    assert (trade.maker_order_id, trade.quantity, trade.price) == (order.order_id, 10, P)
    assert take.ts - order.ts == 10_000 < MIN_REST
    assert order.order_id not in h.resting("AAPL")


def test_hold_mode_a_held_cancel_lets_a_fill_through_then_cancels_the_remainder(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    h.clock.now = order.ts + 10_000
    held = h.start_held(h.cancel, "scalper-1", "AAPL", order.order_id)
    h.clock.now = order.ts + 20_000
    take = h.call(h.submit, "mm-1", "AAPL", cpb.BUY, 4, P)
    [trade] = trades(take)
    assert (trade.maker_order_id, trade.quantity, trade.maker_remaining) == (order.order_id, 4, 6)
    assert take.ts == order.ts + 20_000 and h.hub.scheduler.pending == 1
    h.release(order.ts + MIN_REST)
    cancel = held.result(timeout=10)
    assert cancel.reason == 0 and cancel.seq > take.seq and cancel.ts == order.ts + MIN_REST
    [cancelled] = cancel.events(Cancelled)
    assert (cancelled.order_id, cancelled.remaining) == (order.order_id, 6)


def test_hold_mode_a_held_cancel_of_an_order_filled_meanwhile_finds_no_order(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    held = h.start_held(h.cancel, "scalper-1", "AAPL", order.order_id)
    h.clock.now = order.ts + 1
    assert trades(h.call(h.submit, "mm-1", "AAPL", cpb.BUY, 10, P))[0].maker_order_id == order.order_id
    h.release(order.ts + MIN_REST)
    assert held.result(timeout=10).reason == RejectReason.UNKNOWN_ORDER


# -- WHO IT APPLIES TO ---------------------------------------------------------------------------


def test_participant_class_preset_lets_a_market_maker_cancel_in_the_same_nanosecond(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    order = _rest(h, "mm-1")
    r = h.call(h.cancel, "mm-1", "AAPL", order.order_id)
    assert r.reason == 0 and r.ts == order.ts


def test_participant_class_preset_lets_an_institution_cancel_the_moment_its_order_enters(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.SELL, 10, P)  # behind the 100 us floor
    h.release(h.clock.now + 100_000)
    order = held.result(timeout=10)
    r = h.call(h.cancel, "inst-1", "AAPL", order.order_id)
    assert r.reason == 0 and r.ts == order.ts


@pytest.mark.parametrize("participant", ["scalper-1", "inst-1", "mm-1"])
def test_order_attributes_preset_applies_the_minimum_to_every_participant(make_hub, participant):
    h = make_hub(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES))
    order = _rest(h, participant, quantity=100, post_only=True)  # exempt from the floor: enters now
    h.clock.now = order.ts + 49_999
    assert h.call(h.cancel, participant, "AAPL", order.order_id).reason == 601
    h.clock.now = order.ts + MIN_REST
    assert h.call(h.cancel, participant, "AAPL", order.order_id).reason == 0


def test_the_minimum_counts_from_entry_into_the_book_not_from_arrival(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES))
    arrival = h.clock.now
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.SELL, 10, P)  # not exempt: 100 us floor
    h.release(arrival + 100_000)
    order = held.result(timeout=10)
    assert order.ts == arrival + 100_000
    h.clock.now = order.ts + 49_999  # 149_999 ns after it arrived
    assert h.call(h.cancel, "inst-1", "AAPL", order.order_id).reason == 601
    h.clock.now = order.ts + MIN_REST
    assert h.call(h.cancel, "inst-1", "AAPL", order.order_id).reason == 0


def test_off_preset_lets_a_scalper_cancel_in_the_same_nanosecond(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.OFF))
    order = _rest(h)
    r = h.call(h.cancel, "scalper-1", "AAPL", order.order_id)
    assert r.reason == 0 and r.ts == order.ts


def test_a_configured_minimum_of_30ms_is_enforced_to_the_nanosecond(make_hub):
    h = make_hub(FairnessConfig(min_resting_ns=30_000_000))
    order = _rest(h)
    h.clock.now = order.ts + 29_999_999
    assert h.call(h.cancel, "scalper-1", "AAPL", order.order_id).reason == 601
    h.clock.now = order.ts + 30_000_000
    assert h.call(h.cancel, "scalper-1", "AAPL", order.order_id).reason == 0


def test_cancel_on_disconnect_is_not_blocked_by_the_minimum(make_hub):
    """Cancel-on-disconnect is a risk control: it removes even a too-young DAY order."""
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.REJECT))
    who = h.who["scalper-1"]
    session = h.hub.open_session(who, cancel_on_disconnect=True)
    order = h.call(h.submit, "scalper-1", "AAPL", cpb.SELL, 10, P, tif=cpb.DAY, session_id=session.session_id)
    assert h.hub.close_session(who, session) == 1
    assert order.order_id not in h.resting("AAPL")


def test_hold_mode_a_held_replace_is_refused_if_the_instrument_was_halted_meanwhile(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    order = _rest(h)
    h.clock.now = order.ts + 1
    held = h.start_held(h.replace, "scalper-1", "AAPL", order.order_id, P + TICK, 10)
    h.clock.now = order.ts + 2
    h.hub.set_halted(h.who["operator"], "AAPL", 0, True)
    h.release(order.ts + MIN_REST)
    assert held.result(timeout=10).reason == cpb.REJECT_INSTRUMENT_HALTED
    _assert_untouched(h, order.order_id)


def test_a_replace_that_loses_priority_restarts_the_resting_time_and_one_that_keeps_it_does_not(make_hub):
    """A new price (or more quantity) puts the order at the back of the queue like a new one, so it
    must rest again: otherwise one wait of 50 us lets a scalper re-price and pull it at will."""
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.REJECT))
    order = _rest(h)
    h.clock.now = order.ts + MIN_REST
    assert h.call(h.replace, "scalper-1", "AAPL", order.order_id, P + TICK, 10).reason == 0  # priority lost
    repriced_at = h.clock.now
    h.clock.now = repriced_at + 1
    assert h.call(h.cancel, "scalper-1", "AAPL", order.order_id).reason == 601
    h.clock.now = repriced_at + MIN_REST
    assert h.call(h.replace, "scalper-1", "AAPL", order.order_id, P + TICK, 9).reason == 0  # priority kept
    h.clock.now += 1
    assert h.call(h.cancel, "scalper-1", "AAPL", order.order_id).reason == 0  # it has rested since the re-price


# -- MASS CANCEL ---------------------------------------------------------------------------------


def test_reject_mode_a_mass_cancel_leaves_the_orders_not_yet_rested_and_takes_the_rest(make_hub):
    """A mass cancel is one engine command for the account, and the engine knows no resting times:
    it pulled an order the moment it was entered. Now the young ones stay, as their own cancel
    would, and the reply says how many; the rested ones go."""
    h = make_hub(FairnessConfig())
    old = _rest(h)
    h.clock.now = old.ts + MIN_REST
    young = _rest(h)
    h.clock.now = young.ts + MIN_REST - 1
    count, reason, text = h.hub.mass_cancel(h.who["scalper-1"], "AAPL", 0)
    assert (count, reason) == (1, 0) and "1 orders not yet rested" in text
    assert old.order_id not in h.resting("AAPL") and young.order_id in h.resting("AAPL")
    h.clock.now = young.ts + MIN_REST
    assert h.hub.mass_cancel(h.who["scalper-1"], "AAPL", 0) == (1, 0, "")
    assert h.resting("AAPL") == {}


def test_hold_mode_a_mass_cancel_takes_each_young_order_once_it_has_rested(make_hub):
    h = make_hub(FairnessConfig(min_resting_mode=RestingMode.HOLD))
    young = _rest(h)
    h.clock.now = young.ts + 10_000
    pulled = h.start(h.hub.mass_cancel, h.who["scalper-1"], "", 0)
    assert not_done_after(pulled)
    _assert_untouched(h, young.order_id)
    h.release(young.ts + MIN_REST)
    assert pulled.result(timeout=10) == (1, 0, "")
    assert h.resting("AAPL") == {}


def test_a_mass_cancel_of_rested_orders_or_of_a_participant_with_no_resting_rule_is_one_engine_command(make_hub):
    h = make_hub(FairnessConfig())
    for who in ("scalper-1", "mm-1"):
        _rest(h, who)
    count, reason, _ = h.hub.mass_cancel(h.who["mm-1"], "", 0)  # market makers have no resting time
    assert (count, reason) == (1, 0)
    h.clock.now += MIN_REST
    assert h.hub.mass_cancel(h.who["scalper-1"], "", 0)[:2] == (1, 0)
    kinds = [type(command_of(e)).__name__ for e in h.hub.journal.entries() if e.kind == EntryKind.ENGINE]
    assert "Cancel" not in kinds and kinds.count("MassCancel") >= 2


def test_a_scalpers_quotes_must_rest_before_a_mass_quote_replaces_them(make_hub):
    """Quote orders rest like any other order of the participant: a mass quote arriving before a
    scalper's quotes on an instrument have rested leaves them and refuses that instrument's new sides
    (MIN_RESTING_TIME); other instruments of the message go on. Before, quotes had no resting time,
    so a scalper could place and pull through mass quotes at will. A market maker has none."""
    from hub.core import QuoteSpec

    h = make_hub(FairnessConfig())
    me = h.who["scalper-1"]

    def quote(symbol: str, price: int, tick: int) -> QuoteSpec:
        return QuoteSpec(symbol, price - tick, 10, price + tick, 10)

    msft = h.hub.by_symbol["MSFT"]
    _, rows, reason, _ = h.hub.mass_quote(me, [quote("AAPL", P, TICK)], 1001)
    assert reason == 0 and rows[0][1] and rows[0][3]
    first = {rows[0][1], rows[0][3]}
    h.clock.now += MIN_REST - 1
    _, rows, reason, _ = h.hub.mass_quote(me, [quote("AAPL", P, 2 * TICK),
                                               quote("MSFT", msft.reference_price, msft.tick_size)], 1001)
    assert reason == 0
    assert rows[0] == ("AAPL", 0, FairnessReject.MIN_RESTING_TIME, 0, FairnessReject.MIN_RESTING_TIME)
    assert rows[1][1] and rows[1][3] and not rows[1][2] and not rows[1][4]
    assert first <= set(h.resting("AAPL"))  # the young quotes stay
    h.clock.now += 1
    _, rows, reason, _ = h.hub.mass_quote(me, [quote("AAPL", P, 2 * TICK)], 1001)
    assert reason == 0 and rows[0][1] and rows[0][3]
    assert not first & set(h.resting("AAPL")) and {rows[0][1], rows[0][3]} <= set(h.resting("AAPL"))
    mm = h.who["mm-1"]
    for k in range(2):  # no resting rule for market makers: replaced at once
        _, rows, reason, _ = h.hub.mass_quote(mm, [quote("AAPL", P, (5 + k) * TICK)], 3001)
        assert reason == 0 and rows[0][1] and rows[0][3]
