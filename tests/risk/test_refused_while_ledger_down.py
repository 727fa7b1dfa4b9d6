"""Risk work the hub had already decided on must survive a moment when the ledger cannot record
(``Hub._next`` refuses): the cancels of a kill stay queued and happen once it can, a settle step
takes nothing it cannot record, and a risk tick never changes the state before its record is
sure to be written (a state the ledger cannot rebuild makes the next start fail)."""

from __future__ import annotations

import pytest

from compliance.risk import Scope
from hub.core import HubUnavailableError
from hub.v1 import common_pb2 as cpb
from tests.risk.support import SEC, TICK, P, RiskHub, hub_config


def _refuse_after(hub, method: str, refuse_before: bool):
    """Make ``hub.<method>`` find the hub refusing (before or after it runs), once."""
    original = getattr(hub, method)

    def wrapped(*args):
        if refuse_before:
            hub.accepting = False
            return original(*args)
        result = original(*args)
        hub.accepting = False
        return result

    setattr(hub, method, wrapped)
    return lambda: (setattr(hub, method, original), setattr(hub, "accepting", True))


def test_a_kills_cancels_refused_by_the_ledger_stay_queued_and_happen_once_it_can_record() -> None:
    rh = RiskHub(hub_config())
    hub = rh.hub
    resting = rh.sell("inst-1", "AAPL", P, 10)
    restore = _refuse_after(hub, "_cancel_for_risk", refuse_before=True)
    with pytest.raises(HubUnavailableError):
        rh.kill(Scope.PARTICIPANT, "inst-1")
    restore()
    assert resting.order_id in rh.resting_ids()  # not cancelled yet, but not forgotten:
    assert hub.drain_risk_cancels() == 1
    assert resting.order_id not in rh.resting_ids()
    taker = rh.buy("scalper-1", "AAPL", P, 10, tif=cpb.IOC)
    assert taker.accepted and taker.trades() == []  # the killed participant's order no longer trades


def test_a_settle_step_the_ledger_refuses_takes_nothing_and_settles_later() -> None:
    rh = RiskHub(hub_config())
    hub = rh.hub
    order = rh.buy("inst-1", "AAPL", P - 10 * TICK, 100)
    restore = _refuse_after(hub, "_cancel_for_risk", refuse_before=False)  # cancelled, then refused
    with pytest.raises(HubUnavailableError):
        rh.kill(Scope.PARTICIPANT, "inst-1")
    restore()
    assert hub.unsettled_risk_cancels == 1
    hub.drain_risk_cancels()
    assert hub.unsettled_risk_cancels == 0
    assert order.order_id not in rh.resting_ids()
    assert hub.risk.position("inst-1", 1) == (0, 0, 0)  # its open exposure released
    reports = hub.executions(rh.who["inst-1"], 0, 0)
    assert [r.order_id for r in reports if r.exec_type == cpb.EXEC_CANCELLED] == [order.order_id]


def test_a_risk_tick_refused_by_the_ledger_changes_nothing_and_the_hub_restarts(tmp_path) -> None:
    rh = RiskHub(hub_config(data_dir=tmp_path), durable=True)
    try:
        rh.trade("AAPL", P, 10, "scalper-1", "mm-1")  # opens the risk day
        day = rh.hub.risk._day
        rh.clock.advance(86_400 * SEC)  # the next trading day is due
        rh.hub.journal._error = "OperationalError: disk I/O error (simulated)"
        with pytest.raises(HubUnavailableError):
            rh.hub.risk_tick()
        assert rh.hub.risk._day == day  # refused before the tick changed anything
        rh.hub.journal._error = None
        rh.hub.risk_tick()  # now it rolls the day, and records it
        assert rh.hub.risk._day != day
        rh.buy("inst-1", "MSFT", 400_0000, 1)
        before = rh.hub.state_digest_bytes()
        rh.restart()  # fails if a checkpoint signed a state the ledger cannot rebuild
        assert rh.hub.state_digest_bytes() == before
    finally:
        rh.stop()


def test_a_session_close_whose_commit_times_out_still_ends_with_its_day_orders_cancelled(tmp_path) -> None:
    """Cancel-on-disconnect: the close was recorded first, and a commit that timed out escaped
    before the cancels; the close committed later, so the next start saw a closed session and
    never cancelled its DAY orders either. The cancels now come first."""
    from hub.journal import JournalUnavailableError

    rh = RiskHub(hub_config(data_dir=tmp_path), durable=True)
    try:
        who = rh.who["scalper-1"]
        session = rh.hub.open_session(who, cancel_on_disconnect=True)
        day = rh.buy("scalper-1", "AAPL", P - 10 * TICK, 5, tif=cpb.DAY, session_id=session.session_id)
        journal = rh.hub.journal
        journal._commit_timeout = 0.3
        journal._write_lock.acquire()  # storage slower than the commit timeout
        try:
            with pytest.raises(JournalUnavailableError):
                rh.hub.close_session(who, session)
        finally:
            journal._write_lock.release()  # it catches up: whatever was queued commits
        journal.flush()
        rh.hub.close_sessions_left_open()  # the live hub finishes the close itself
        assert rh.hub.sessions_left_open() == [] and day.order_id not in rh.resting_ids()
        rh.restart()
        assert day.order_id not in rh.resting_ids()
        assert rh.hub.sessions_left_open() == []
    finally:
        rh.stop()


def test_a_halt_reaches_subscribers_only_behind_its_record(tmp_path) -> None:
    """Market data leaves after the commit of what it reports (streams wait for the ticket each
    update carries): a halt queued with ticket 0 went out before its record was committed, so after
    a crash subscribers had seen a halt the ledger does not hold."""
    from tests.risk.support import AAPL

    rh = RiskHub(hub_config(data_dir=tmp_path), durable=True)
    try:
        sub, _ = rh.hub.subscribe([AAPL])
        rh.hub.set_halted(rh.who["operator"], "AAPL", 0, True)
        updates, ticket = sub.take(0.1)
        assert [u.WhichOneof("body") for u in updates] == ["status"] and updates[0].status.halted
        assert ticket == rh.hub.last_ticket > 0  # the halt record's own ticket
    finally:
        rh.stop()


def test_a_session_close_the_ledger_refused_is_finished_once_it_can_record() -> None:
    """Its cancel-on-disconnect applied only at the next start: the DAY orders of a client that had
    gone rested on meanwhile. The checkpointer's pass finishes the close as soon as it can."""
    rh = RiskHub(hub_config())
    who = rh.who["scalper-1"]
    session = rh.hub.open_session(who, cancel_on_disconnect=True)
    day = rh.buy("scalper-1", "AAPL", P - 10 * TICK, 5, tif=cpb.DAY, session_id=session.session_id)
    gtc = rh.buy("scalper-1", "AAPL", P - 11 * TICK, 5, tif=cpb.GTC, session_id=session.session_id)
    rh.hub.accepting = False  # the ledger refuses, just as the client goes
    with pytest.raises(HubUnavailableError):  # the stream ends UNAVAILABLE: the client cannot rely on it
        rh.hub.close_session(who, session)
    assert rh.hub.close_sessions_left_open() == 0  # still refusing: nothing yet
    rh.hub.accepting = True
    assert rh.hub.sessions_left_open() == [(session.session_id, "scalper-1", True)]
    assert rh.hub.close_sessions_left_open() == 1
    assert day.order_id not in rh.resting_ids() and gtc.order_id in rh.resting_ids()  # DAY only
    assert rh.hub.sessions_left_open() == []
    assert rh.hub.close_sessions_left_open() == 0  # and only once


def test_a_session_close_whose_cancel_the_ledger_refused_once_is_not_recorded_as_closed() -> None:
    """One DAY order's cancel refused, the ledger fine again a moment later: the close must not be
    recorded (nothing would ever cancel the order after it); the next pass finishes it."""
    rh = RiskHub(hub_config())
    hub = rh.hub
    who = rh.who["scalper-1"]
    session = hub.open_session(who, cancel_on_disconnect=True)
    day = rh.buy("scalper-1", "AAPL", P - 10 * TICK, 5, tif=cpb.DAY, session_id=session.session_id)
    original = hub._amend

    def refused_once(*args, **kwargs):
        hub._amend = original
        raise HubUnavailableError("ledger unavailable (simulated, once)")

    hub._amend = refused_once
    with pytest.raises(HubUnavailableError):
        hub.close_session(who, session)
    assert day.order_id in rh.resting_ids()
    assert hub.sessions_left_open() == [(session.session_id, "scalper-1", True)]  # not recorded as closed
    assert hub.close_sessions_left_open() == 1
    assert day.order_id not in rh.resting_ids() and hub.sessions_left_open() == []
