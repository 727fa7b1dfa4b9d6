"""An order-entry reject is journaled under the sequencer but waited for outside it: its caller
waits for the commit (``_settle`` here, the gateway's committer over gRPC), everyone else goes on.
Before, a reject decided while sequencing (risk checks, a halt while held) waited for its record's
commit holding the sequencer, and every reject blocked the gateway's event loop for a commit: on
slow storage a flood of bad orders stalled all order entry."""

from __future__ import annotations

import threading
import time

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import Hub, OrderSpec, Refused, ticket_of
from hub.journal import EntryKind, InMemoryJournal
from hub.v1 import common_pb2 as cpb


class _SlowRejects(InMemoryJournal):
    """Commits of gateway rejects wait for ``release``; the rest commit at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = threading.Event()

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        if self.entries()[ticket - 1].kind == EntryKind.GATEWAY_REJECT:
            self.waiting.set()
            assert self.release.wait(10)


def _buy(price: int) -> OrderSpec:
    return OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, price, 100)


def test_orders_go_on_while_a_risk_reject_waits_for_its_commit() -> None:
    config = HubConfig.default()
    journal = _SlowRejects()
    hub = Hub(config, journal)
    who = {p.id: Identity.of(p) for p in config.participants}
    refused: list = []
    caller = threading.Thread(target=lambda: refused.append(hub.submit_order(who["scalper-1"], _buy(100_0000))))
    caller.start()
    try:
        assert journal.waiting.wait(5), "the reject (outside the price band) waits for its commit"
        started = time.monotonic()
        outcome, reason, _ = hub.submit_order(who["scalper-2"], _buy(189_0000))
        assert reason == 0 and outcome is not None
        assert time.monotonic() - started < 2.0 and not refused, "the order did not wait for the reject's commit"
    finally:
        journal.release.set()
        caller.join(10)
    ((outcome, reason, text),) = refused
    assert outcome is None and reason != 0 and text


def test_a_refusal_carries_the_ticket_of_its_reject_record() -> None:
    config = HubConfig.default()
    hub = Hub(config, InMemoryJournal())
    who = Identity.of(next(p for p in config.participants if p.id == "scalper-1"))
    result = hub.enter_order(who, _buy(100_0000))  # risk: outside the price band, decided while sequencing
    assert isinstance(result, Refused) and result[0] is None
    (entry,) = [e for e in hub.journal.entries() if e.kind == EntryKind.GATEWAY_REJECT]
    assert ticket_of(result) == len(hub.journal.entries()) and entry.seq_first == hub.last_sequence
    unknown = hub.enter_order(who, OrderSpec("NOPE", cpb.BUY, cpb.LIMIT, cpb.GTC, 1, 1))  # refused at the gateway
    assert isinstance(unknown, Refused) and ticket_of(unknown) == ticket_of(result) + 1
    accepted = hub.enter_order(who, _buy(189_0000))
    assert ticket_of(accepted) == accepted[0].ticket > ticket_of(unknown)
