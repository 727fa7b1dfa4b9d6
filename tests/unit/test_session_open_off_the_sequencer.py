"""Opening a session waits for its record's commit without holding the sequencer: on slow storage
the opener waits, and everyone else's orders go on. Before, the sequencer was held across the
commit wait, and one participant's session open stalled every order entry in the hub. A commit
that fails leaves no half-open session: the caller gets the error and the checkpointer's pass
closes the session on record."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import Hub, OrderSpec
from hub.journal import EntryKind, InMemoryJournal, JournalUnavailableError
from hub.v1 import common_pb2 as cpb


class _SlowOpens(InMemoryJournal):
    """Commits of session opens wait for ``release`` (or fail, with ``fail``); others are at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.waiting = threading.Event()
        self.fail = False

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        entry = self.entries()[ticket - 1]
        if entry.kind == EntryKind.ADMIN and json.loads(entry.detail)["action"] == "session_open":
            self.waiting.set()
            if self.fail:
                raise JournalUnavailableError("the ledger refused")
            assert self.release.wait(10)


def _hub() -> tuple[Hub, _SlowOpens, dict[str, Identity]]:
    config = HubConfig.default()
    journal = _SlowOpens()
    return Hub(config, journal), journal, {p.id: Identity.of(p) for p in config.participants}


def test_orders_go_on_while_a_session_open_waits_for_its_commit() -> None:
    hub, journal, who = _hub()
    opened: list = []
    opener = threading.Thread(target=lambda: opened.append(hub.open_session(who["mm-1"], cancel_on_disconnect=True)))
    opener.start()
    try:
        assert journal.waiting.wait(5)
        started = time.monotonic()
        outcome, reason, _ = hub.submit_order(who["scalper-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC,
                                                                          189_0000, 100))
        assert reason == 0 and outcome is not None
        assert time.monotonic() - started < 2.0 and not opened, "the order did not wait for the session's commit"
    finally:
        journal.release.set()
        opener.join(10)
    (session,) = opened
    assert session.cancel_on_disconnect and hub.sessions_left_open() == []


def test_a_session_open_the_ledger_refuses_is_closed_on_record_by_the_checkpointers_pass() -> None:
    hub, journal, who = _hub()
    journal.fail = True
    with pytest.raises(JournalUnavailableError):
        hub.open_session(who["mm-1"], cancel_on_disconnect=False)
    (left,) = hub.sessions_left_open()
    assert left[1] == "mm-1" and not hub._sessions
    journal.fail = False
    hub.close_sessions_left_open()
    assert hub.sessions_left_open() == []
    closes = [json.loads(e.detail) for e in journal.entries()
              if e.kind == EntryKind.ADMIN and json.loads(e.detail)["action"] == "session_close"]
    assert [c["session"] for c in closes] == [left[0]]
