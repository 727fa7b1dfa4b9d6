"""Latency floor: who waits, for exactly how long, and who is sequenced first.

In-process hub on a fake clock. Participant_class preset: institution orders wait 100 us, so a
scalper order arriving 50 us after an institution's is sequenced first. Order_attributes
preset: every new order waits except a post-only order of at least post_only_exempt_min_quantity,
whoever sends it; a scalper goes first only with such an order. Held work is released in
release-time order (ties by arrival), and a command that waits for nothing never overtakes one
already due. The journal records both times of each command: arrival_ns and ts (the release).
"""

from __future__ import annotations

import pytest

from hub.core import HeldCall, OrderSpec, QuoteSpec
from hub.fairness import FairnessConfig, Preset
from hub.journal import EntryKind
from hub.v1 import common_pb2 as cpb
from tests.fairness.support import InProcessHub, P, trades

FLOOR = 100_000
EXEMPT = FairnessConfig().post_only_exempt_min_quantity


def _journal_times(h: InProcessHub, r) -> tuple[int, int]:
    entry = h.entry(r.seq)
    assert entry.kind == EntryKind.ENGINE
    return entry.arrival_ns, entry.ts


def _ask(h: InProcessHub, quantity: int = 10) -> int:
    """A resting market-maker ask at P (market makers wait for nothing under participant_class)."""
    r = h.call(h.submit, "mm-1", "AAPL", cpb.SELL, quantity, P)
    assert r.reason == 0 and r.order_id in h.resting("AAPL")
    return r.order_id


# -- PARTICIPANT_CLASS PRESET --------------------------------------------------------------------


def test_scalper_order_50us_after_an_institution_order_is_sequenced_first_and_takes_the_liquidity(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    ask = _ask(h)
    t = h.clock.advance(1_000_000)
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 50_000
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, 10, P)
    assert not institution.done()
    h.release(t + FLOOR)
    inst = institution.result(timeout=10)
    assert scalper.seq < inst.seq
    assert _journal_times(h, scalper) == (t + 50_000, t + 50_000)
    assert _journal_times(h, inst) == (t, t + FLOOR)
    assert [tr.maker_order_id for tr in trades(scalper)] == [ask]
    assert trades(inst) == [] and inst.order_id in h.resting("AAPL")  # nothing left: it rests


@pytest.mark.parametrize(("offset", "scalper_first"), [(99_999, True), (100_000, False), (100_001, False)])
def test_a_scalper_order_overtakes_a_held_institution_order_only_before_its_release_time(make_hub, offset,
                                                                                       scalper_first):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + offset
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, 10, P)
    h.release(max(t + FLOOR, h.clock.now))
    inst = institution.result(timeout=10)
    assert (scalper.seq < inst.seq) is scalper_first
    arrival, released = _journal_times(h, inst)
    assert arrival == t
    assert released == (t + FLOOR if scalper_first else t + offset)


@pytest.mark.parametrize("participant", ["scalper-1", "mm-1"])
def test_participant_class_preset_delays_no_one_but_institutions(make_hub, participant):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    r = h.call(h.submit, participant, "AAPL", cpb.BUY, 10, P)
    assert _journal_times(h, r) == (h.clock.now, h.clock.now)


@pytest.mark.parametrize(("quantity", "post_only"), [(10, False), (EXEMPT, True), (10 * EXEMPT, True)])
def test_participant_class_preset_delays_every_institution_order_whatever_its_attributes(make_hub, quantity,
                                                                                         post_only):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, quantity, P, post_only=post_only)
    h.release(t + FLOOR - 1)
    assert not held.done() and h.hub.scheduler.pending == 1
    h.release(t + FLOOR)
    assert _journal_times(h, held.result(timeout=10)) == (t, t + FLOOR)


def test_a_configured_floor_of_30ms_is_enforced_to_the_nanosecond(make_hub):
    h = make_hub(FairnessConfig(latency_floor_ns=30_000_000))
    t = h.clock.now
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.release(t + 29_999_999)
    assert not held.done()
    h.release(t + 30_000_000)
    assert _journal_times(h, held.result(timeout=10)) == (t, t + 30_000_000)


# -- RELEASE ORDER -------------------------------------------------------------------------------


def test_held_orders_are_released_in_release_time_order_ties_by_arrival(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    first = h.start_held(h.submit, "inst-2", "AAPL", cpb.BUY, 10, P)
    second = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)  # same arrival time: a tie
    h.clock.now = t + 10
    third = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.release(t + 1_000_000)  # all three are late by now: released together, still in order
    results = [f.result(timeout=10) for f in (first, second, third)]
    assert [r.seq for r in results] == sorted(r.seq for r in results)
    assert [_journal_times(h, r) for r in results] == [(t, t + 1_000_000), (t, t + 1_000_000),
                                                        (t + 10, t + 1_000_000)]
    lateness = h.hub.scheduler.lateness.percentiles()
    assert lateness["count"] == 3 and lateness["max_us"] == 900.0


def test_a_command_arriving_after_a_held_order_is_due_never_overtakes_it(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    h.hub.scheduler.close()  # no scheduler thread: only the next command's arrival can release it
    t = h.clock.now
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 150_000
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, 10, P)
    inst = institution.result(timeout=10)
    assert inst.seq < scalper.seq
    assert _journal_times(h, inst) == (t, t + 150_000)
    assert _journal_times(h, scalper) == (t + 150_000, t + 150_000)


def test_a_cancel_waits_behind_no_floor(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.release(h.clock.now + FLOOR)
    order = held.result(timeout=10)
    cancel = h.call(h.cancel, "inst-1", "AAPL", order.order_id)
    assert cancel.reason == 0 and _journal_times(h, cancel) == (order.ts, order.ts)


# -- ORDER_ATTRIBUTES PRESET ---------------------------------------------------------------------


def test_order_attributes_an_exempt_scalper_order_50us_later_is_sequenced_first_and_gets_queue_priority(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES))
    t = h.clock.now
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 50_000
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, EXEMPT, P, post_only=True)
    h.release(t + FLOOR)
    inst = institution.result(timeout=10)
    assert scalper.seq < inst.seq
    assert _journal_times(h, scalper) == (t + 50_000, t + 50_000)
    assert _journal_times(h, inst) == (t, t + FLOOR)
    # A seller then meets the scalper's bid first: it is ahead in the queue at P.
    h.clock.now = t + 200_000
    seller = h.start_held(h.submit, "mm-1", "AAPL", cpb.SELL, EXEMPT + 10, P)  # not post-only: delayed too
    h.release(t + 300_000)
    fills = trades(seller.result(timeout=10))
    assert [(tr.maker_order_id, tr.quantity) for tr in fills] == [(scalper.order_id, EXEMPT), (inst.order_id, 10)]


@pytest.mark.parametrize(("quantity", "post_only"), [(EXEMPT - 1, True), (EXEMPT, False), (10 * EXEMPT, False)],
                         ids=["post-only-below-minimum", "not-post-only", "large-not-post-only"])
def test_order_attributes_a_non_exempt_scalper_order_is_delayed_and_stays_behind_the_institution(make_hub, quantity,
                                                                                               post_only):
    h = make_hub(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES))
    t = h.clock.now
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 50_000
    scalper = h.start_held(h.submit, "scalper-1", "AAPL", cpb.BUY, quantity, P, post_only=post_only)
    h.release(t + FLOOR)
    inst = institution.result(timeout=10)
    assert not scalper.done() and h.hub.scheduler.pending == 1
    h.release(t + 50_000 + FLOOR)
    scalp = scalper.result(timeout=10)
    assert inst.seq < scalp.seq
    assert _journal_times(h, inst) == (t, t + FLOOR)
    assert _journal_times(h, scalp) == (t + 50_000, t + 50_000 + FLOOR)


@pytest.mark.parametrize("participant", ["scalper-1", "inst-1", "mm-1"])
@pytest.mark.parametrize(("quantity", "post_only", "delay"), [(10, False, FLOOR), (EXEMPT - 1, True, FLOOR),
                                                              (EXEMPT, True, 0)])
def test_order_attributes_delay_depends_on_the_order_not_on_who_sends_it(make_hub, participant, quantity, post_only,
                                                                         delay):
    h = make_hub(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES))
    t = h.clock.now
    if delay:
        held = h.start_held(h.submit, participant, "AAPL", cpb.BUY, quantity, P, post_only=post_only)
        h.release(t + delay)
        r = held.result(timeout=10)
    else:
        r = h.call(h.submit, participant, "AAPL", cpb.BUY, quantity, P, post_only=post_only)
    assert r.reason == 0
    assert _journal_times(h, r) == (t, t + delay)


def test_off_preset_delays_no_order(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.OFF))
    for participant in ("inst-1", "scalper-1", "mm-1"):
        r = h.call(h.submit, participant, "AAPL", cpb.BUY, 10, P)
        assert _journal_times(h, r) == (h.clock.now, h.clock.now)


# -- WHAT CHANGED WHILE AN ORDER WAITED ----------------------------------------------------------


def test_an_order_held_behind_the_floor_is_refused_if_its_instrument_was_halted_meanwhile(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 50_000
    assert h.hub.set_halted(h.who["operator"], "AAPL", 0, True)[1] == ""
    h.release(t + FLOOR)
    r = held.result(timeout=10)
    assert r.outcome is None and r.reason == cpb.REJECT_INSTRUMENT_HALTED
    assert h.resting("AAPL") == {}
    rejected = h.last_entry()
    assert rejected.kind == EntryKind.GATEWAY_REJECT and (rejected.arrival_ns, rejected.ts) == (t, t + FLOOR)


def test_an_order_held_behind_the_floor_is_accepted_if_the_halt_was_lifted_before_its_release(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 20_000
    h.hub.set_halted(h.who["operator"], "AAPL", 0, True)
    h.clock.now = t + 40_000
    h.hub.set_halted(h.who["operator"], "AAPL", 0, False)
    h.release(t + FLOOR)
    r = held.result(timeout=10)
    assert r.reason == 0 and r.order_id in h.resting("AAPL")


def test_a_held_order_whose_caller_went_away_is_still_sequenced_and_the_scheduler_goes_on(make_hub):
    """A caller that cancels its held call's future (the gateway's did, on a deadline or a client
    gone) made the release raise InvalidStateError: the scheduler's thread died, and every order
    held after it waited forever."""
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.now
    gone = h.hub.enter_order(h.who["inst-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, P - 500, 10))
    assert isinstance(gone, HeldCall) and gone.future.cancel()
    later = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P - 600)
    h.release(t + FLOOR)
    assert later.result(timeout=10).reason == 0
    assert h.hub.scheduler._thread.is_alive()
    assert sorted(o.price for o in h.resting("AAPL").values()) == [P - 600, P - 500]  # both entered


def test_an_institutions_mass_quote_waits_behind_the_floor_as_its_orders_do(make_hub):
    """Quotes are orders: an institution's mass quote is held for its floor, so a scalper's order 50 us
    later is sequenced first. Before, a mass quote skipped the floor: an institution could enter
    (post-only) orders through it without the wait its other orders have."""
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.advance(1_000_000)
    quote = h.start_held(h.hub.mass_quote, h.who["inst-1"], [QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
    h.clock.now = t + 50_000
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.SELL, 10, P + 100)
    assert not quote.done()
    h.release(t + FLOOR - 1)
    assert not quote.done()
    h.release(t + FLOOR)
    reports, rows, reason, _ = quote.result(timeout=10)
    [(_, bid, bid_reason, ask, ask_reason)] = rows
    assert reason == 0 and bid and ask and (bid_reason, ask_reason) == (0, 0)
    assert scalper.seq < bid < ask
    assert [(r.order_id, r.exec_type) for r in reports] == [(bid, cpb.EXEC_NEW), (ask, cpb.EXEC_NEW)]
    entry = h.entry(bid)
    assert (entry.arrival_ns, entry.ts) == (t, t + FLOOR)  # arrival stamped, sequenced at release
    assert {bid, ask} <= set(h.resting("AAPL"))


def test_a_market_makers_mass_quote_waits_for_nothing(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.advance(1_000_000)
    _, rows, reason, _ = h.call(h.hub.mass_quote, h.who["mm-1"], [QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
    assert reason == 0 and h.entry(rows[0][1]).ts == t and h.hub.scheduler.pending == 0


def test_a_held_mass_quote_on_an_instrument_halted_meanwhile_is_refused_for_it(make_hub):
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    t = h.clock.advance(1_000_000)
    quote = h.start_held(h.hub.mass_quote, h.who["inst-1"], [QuoteSpec("AAPL", P - 100, 5, P + 100, 5),
                                                             QuoteSpec("MSFT", 419_0000, 5, 421_0000, 5)], 0)
    h.clock.now = t + 20_000
    h.hub.set_halted(h.who["operator"], "AAPL", 0, True)
    h.release(t + FLOOR)
    _, rows, reason, _ = quote.result(timeout=10)
    halted = cpb.REJECT_INSTRUMENT_HALTED
    assert reason == 0 and rows[0] == ("AAPL", 0, halted, 0, halted)
    assert rows[1][1] and rows[1][3] and h.resting("AAPL") == {}


@pytest.mark.parametrize("command", ["mass_quote", "mass_cancel", "halt"])
def test_a_command_that_waits_for_nothing_never_overtakes_a_held_order_already_due(make_hub, command):
    """Not only single orders: mass quotes, mass cancels and halts release what is due before them."""
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    h.hub.scheduler.close()  # no scheduler thread: only the next command's arrival can release it
    t = h.clock.now
    institution = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P)
    h.clock.now = t + 150_000
    before = h.hub.last_sequence
    if command == "mass_quote":
        h.hub.mass_quote(h.who["mm-1"], [QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
    elif command == "mass_cancel":
        h.hub.mass_cancel(h.who["mm-1"], "AAPL", 0)
    else:
        h.hub.set_halted(h.who["operator"], "AAPL", 0, True)
    assert h.hub.scheduler.pending == 0
    inst = institution.result(timeout=10)
    assert inst.reason == 0 and inst.seq == before + 1  # first, then the command that arrived after it was due
    assert _journal_times(h, inst) == (t, t + 150_000)


def test_a_replace_waits_behind_the_floor_as_a_new_order_does(make_hub):
    """An institution's replace is a new price: held for the floor, so a scalper's order 50 us later
    takes the liquidity first. Before, a replace skipped the floor: an institution could rest a
    passive order and re-price it to cross at once, without the wait its new orders have."""
    h = make_hub(FairnessConfig(preset=Preset.PARTICIPANT_CLASS))
    held = h.start_held(h.submit, "inst-1", "AAPL", cpb.BUY, 10, P - 500)
    h.release(h.clock.now + FLOOR)
    passive = held.result(timeout=10)
    assert passive.reason == 0 and passive.order_id in h.resting("AAPL")
    ask = _ask(h)
    t = h.clock.advance(1_000_000)
    replace = h.start_held(h.replace, "inst-1", "AAPL", passive.order_id, P, 10)  # now crossing
    h.clock.now = t + 50_000
    scalper = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, 10, P)
    assert not replace.done()
    h.release(t + FLOOR)
    replaced = replace.result(timeout=10)
    assert replaced.reason == 0 and scalper.seq < replaced.seq
    assert _journal_times(h, replaced) == (t, t + FLOOR)
    assert [tr.maker_order_id for tr in trades(scalper)] == [ask]
    assert trades(replaced) == [] and passive.order_id in h.resting("AAPL")  # nothing left to take: it rests
