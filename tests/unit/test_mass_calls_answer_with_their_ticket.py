"""Mass quotes, mass cancels and session options are journaled without waiting for the commit: the
hub hands back the journal ticket their answer waits for, and the gateway waits for it on its
committer, one commit for every reply of a loop turn. Before, each of them committed on its own,
inline on the gateway's event loop, and a mass cancel over orders that had not rested blocked the
loop until they had (HOLD mode). The tickets must cover what the answer reports: a refusal's record,
the last engine command, or the newest record when nothing was sequenced (a halt it reports)."""

from __future__ import annotations

import json

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import GatewayReject, Hub, OrderSpec, QuoteSpec
from hub.journal import EntryKind, InMemoryJournal
from hub.v1 import common_pb2 as cpb

T0 = 1_767_225_600_000_000_000
P, TICK = 190_0000, 100  # AAPL


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _hub() -> tuple[Hub, _Clock, dict[str, Identity]]:
    config = HubConfig.default()
    clock = _Clock()
    hub = Hub(config, InMemoryJournal(), clock=clock)
    return hub, clock, {p.id: Identity.of(p) for p in config.participants}


def _last_entry(hub: Hub):
    return hub.journal.entries()[-1]


def test_a_mass_quote_answers_with_the_ticket_of_its_last_engine_command() -> None:
    hub, _, who = _hub()
    quotes = [QuoteSpec("AAPL", P - TICK, 10, P + TICK, 10), QuoteSpec("ESZ6", 5995_00, 1, 6005_00, 1)]
    reports, rows, reason, _, ticket = hub.enter_mass_quote(who["mm-1"], quotes, 0)
    assert reason == 0 and all(row[1] and row[3] for row in rows) and reports
    assert ticket == len(hub.journal.entries()) and _last_entry(hub).kind == EntryKind.ENGINE


def test_a_refused_mass_quote_answers_with_the_ticket_of_its_reject_record() -> None:
    hub, _, who = _hub()
    _, rows, reason, _, ticket = hub.enter_mass_quote(who["mm-1"], [QuoteSpec("AAPL", P - TICK, 1, P + TICK, 1)],
                                                      account=1001)  # a scalper's account
    assert reason == GatewayReject.ACCOUNT_NOT_PERMITTED and rows == []
    assert ticket == len(hub.journal.entries()) and _last_entry(hub).kind == EntryKind.GATEWAY_REJECT


def test_a_mass_quote_of_which_nothing_was_sequenced_waits_for_its_reject_records_or_the_newest_record() -> None:
    hub, _, who = _hub()
    hub.set_halted(who["operator"], "AAPL", 0, True)
    halt_ticket = len(hub.journal.entries())
    _, rows, reason, _, ticket = hub.enter_mass_quote(who["mm-1"], [QuoteSpec("AAPL", P - TICK, 1, P + TICK, 1)], 0)
    halted = GatewayReject.INSTRUMENT_HALTED
    assert reason == 0 and rows == [("AAPL", 0, halted, 0, halted)]
    assert ticket == len(hub.journal.entries()) == halt_ticket + 2  # a reject record per refused side
    # Nothing to refuse or sequence (no side quoted): the newest record still, so that what the
    # answer reports (the halt) is shown only once it is on record.
    _, rows, reason, _, ticket = hub.enter_mass_quote(who["mm-1"], [QuoteSpec("AAPL", 0, 0, 0, 0)], 0)
    assert reason == 0 and ticket == len(hub.journal.entries()) == halt_ticket + 2


def test_every_quote_side_refused_before_the_engine_is_on_record_as_a_gateway_reject() -> None:
    """As a refused order is: an unknown symbol, a halted instrument, a price outside the risk band.
    Before, a mass quote's refused sides were answered but no record named them."""
    hub, _, who = _hub()
    hub.set_halted(who["operator"], "MSFT", 0, True)
    first = len(hub.journal.entries()) + 1
    quotes = [QuoteSpec("NOPE", 1, 1, 0, 0), QuoteSpec("MSFT", 419_0000, 1, 421_0000, 1),
              QuoteSpec("AAPL", P - TICK, 1, 2 * P, 1)]  # the ask is far outside the price band
    _, rows, reason, _, ticket = hub.enter_mass_quote(who["mm-1"], quotes, 0)
    assert reason == 0 and rows[2][1] and not rows[2][2] and not rows[2][3] and rows[2][4]
    rejects = [json.loads(e.detail) for e in hub.journal.entries()[first - 1:] if e.kind == EntryKind.GATEWAY_REJECT]
    assert [(r["request"], r["symbol"], r["side"], r["price"], r["quantity"], r["reason"]) for r in rejects] == [
        ("mass_quote", "NOPE", cpb.BUY, 1, 1, cpb.REJECT_UNKNOWN_INSTRUMENT),
        ("mass_quote", "MSFT", cpb.BUY, 419_0000, 1, GatewayReject.INSTRUMENT_HALTED),
        ("mass_quote", "MSFT", cpb.SELL, 421_0000, 1, GatewayReject.INSTRUMENT_HALTED),
        ("mass_quote", "AAPL", cpb.SELL, 2 * P, 1, rows[2][4]),
    ]
    assert all(r["text"] for r in rejects)
    assert ticket == len(hub.journal.entries()) and _last_entry(hub).kind == EntryKind.ENGINE


def test_a_mass_cancel_answers_with_the_ticket_of_its_last_engine_command() -> None:
    hub, clock, who = _hub()
    for price in (P - TICK, P - 2 * TICK):
        assert hub.submit_order(who["scalper-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, price, 100))[1] == 0
    assert hub.submit_order(who["scalper-1"], OrderSpec("ESZ6", cpb.BUY, cpb.LIMIT, cpb.GTC, 5990_00, 1))[1] == 0
    clock.now += 50_000  # the scalper's minimum resting time has passed
    count, reason, text, ticket = hub.enter_mass_cancel(who["scalper-1"], "", 0)
    assert (count, reason, text) == (3, 0, "")
    assert ticket == len(hub.journal.entries()) and _last_entry(hub).kind == EntryKind.ENGINE
    assert hub.open_orders(who["scalper-1"])[0] == []


def test_a_refused_mass_cancel_answers_with_the_ticket_of_its_reject_record() -> None:
    hub, _, who = _hub()
    count, reason, _, ticket = hub.enter_mass_cancel(who["scalper-1"], "NOPE", 0)
    assert count == 0 and reason == cpb.REJECT_UNKNOWN_INSTRUMENT
    assert ticket == len(hub.journal.entries()) and _last_entry(hub).kind == EntryKind.GATEWAY_REJECT


def test_a_mass_cancel_over_orders_not_yet_rested_is_left_to_the_order_by_order_path() -> None:
    hub, clock, who = _hub()
    outcome, reason, _ = hub.submit_order(who["scalper-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, P - TICK, 100))
    assert reason == 0
    recorded = len(hub.journal.entries())
    assert hub.enter_mass_cancel(who["scalper-1"], "AAPL", 0) is None
    assert len(hub.journal.entries()) == recorded  # nothing sequenced: the caller takes the other path
    count, reason, text = hub.mass_cancel_order_by_order(who["scalper-1"], "AAPL", 0)
    assert (count, reason) == (0, 0) and text == "1 orders not yet rested their minimum time stay open"
    clock.now += 50_000
    assert hub.mass_cancel(who["scalper-1"], "AAPL", 0) == (1, 0, "")
    assert hub.open_orders(who["scalper-1"])[0] == []


def test_session_options_are_journaled_and_hold_from_the_callers_commit_on() -> None:
    hub, _, who = _hub()
    session = hub.open_session(who["scalper-1"], False)
    ticket = hub.record_session_options(session, True)
    assert ticket == len(hub.journal.entries())
    assert _last_entry(hub).kind == EntryKind.ADMIN and b'"cancel_on_disconnect":true' in _last_entry(hub).detail
    assert not session.cancel_on_disconnect  # set by the caller once committed
    hub.set_cancel_on_disconnect(session, True)
    assert session.cancel_on_disconnect
