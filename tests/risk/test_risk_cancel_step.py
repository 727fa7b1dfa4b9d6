"""Risk cancels as compact sequenced steps: per asset class one ``cancel_orders`` engine call and one
``risk_cancel`` ledger record (orders, remaining quantities, SHA-256 of the engine events) instead of
a command record and its events per order. Both engines produce the same bytes; the bulk risk
release equals the one-by-one one; a restart replays the steps to the signed state digest and
refuses a ledger whose steps no longer reproduce; RTS 24 projections see each order cancelled by
the venue (CAMO, reason RISK)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matching._cengine import CythonEngine

from compliance.risk import KillMode, RiskConfig, RiskEngine, Scope
from hub.recovery import RecoveryError, _replay_risk_cancel, _replay_risk_settle
from hub.risk_cancels import CancelStepEvents, risk_cancel_detail
from hub.v1 import common_pb2 as cpb
from ledger.projections import proj_order, proj_order_event, rebuild_projections
from ledger.records import (
    Record,
    RecordType,
    canonical_json,
    pack_int64s,
    risk_cancel_orders,
    risk_cancel_remaining,
)
from matching.instruments import DEFAULT_INSTRUMENTS, by_asset_class
from matching.reference import ReferenceEngine
from matching.types import (
    AssetClass,
    BookDelta,
    Cancelled,
    CancelReason,
    NewOrder,
    TopOfBook,
    decode_events,
    encode_commands,
    split_cancelled,
)
from tests.risk.support import SEC, TICK, P, RiskHub, admin_records, ledger_cancels, risk_cancel_records

EQUITIES = by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass.EQUITY]


def _load(engines, rng: random.Random, n: int) -> list[int]:
    """The same random resting book (several orders per level, both sides, all equities) in each engine."""
    commands = []
    for oid in range(1, n + 1):
        inst = rng.choice(EQUITIES)
        side = rng.choice((1, 2))
        ticks = rng.randint(1, 12) * (-1 if side == 1 else 1)
        commands.append(NewOrder(oid, 1_000 + oid, inst.instrument_id, oid, 1001 + oid % 3, side, 1, 1,
                                 inst.reference_price + ticks * inst.tick_size, inst.lot_size * rng.randint(1, 5)))
    packed = encode_commands(commands)
    for engine in engines:
        engine.process_packed(packed)
    return list(range(1, n + 1))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_engines_cancel_the_same_orders_with_the_same_event_bytes(seed: int) -> None:
    rng = random.Random(seed)
    engines = [CythonEngine(AssetClass.EQUITY, EQUITIES), ReferenceEngine(AssetClass.EQUITY, EQUITIES)]
    ids = _load(engines, rng, 400)
    victims = rng.sample(ids, 250) + [10_000, 77_777]  # and ids not resting: skipped
    rng.shuffle(victims)
    packed = array("q", victims).tobytes()
    out = [e.cancel_orders(5_000, packed) for e in engines]
    assert out[0] == out[1]
    assert engines[0].digest() == engines[1].digest()
    events = decode_events(out[0])
    cancels = [ev for ev in events if type(ev) is Cancelled]
    assert sorted(ev.order_id for ev in cancels) == sorted(v for v in victims if v <= 400)
    assert {ev.reason for ev in cancels} == {CancelReason.RISK} and {ev.seq for ev in events} == {5_000}
    # per book: cancels in order-id order, then one delta per level changed and one top
    assert all(type(ev) in (Cancelled, BookDelta, TopOfBook) for ev in events)
    assert sum(type(ev) is TopOfBook for ev in events) <= len(EQUITIES)
    levels = [(ev.instrument_id, ev.side, ev.price) for ev in events if type(ev) is BookDelta]
    assert len(levels) == len(set(levels))
    # the survivors are untouched: cancelling them one by one still works in both engines
    rest = [oid for oid in ids if oid not in set(victims)]
    for e in engines:
        views = {v.order_id: v for i in EQUITIES for v in e.orders(i.instrument_id)}
        assert sorted(views) == rest
    assert engines[0].cancel_orders(5_001, b"") == engines[1].cancel_orders(5_001, b"") == b""


@pytest.mark.parametrize("seed", [7, 8])
def test_an_order_listed_twice_is_cancelled_once_by_both_engines(seed: int) -> None:
    """Two risk decisions can name the same order in one step (a daily-loss kill and a margin call's
    reduce-only): both engines cancel it once. Before, the Cython engine removed its slot twice,
    corrupting its pool: a hang or a crash (free(): invalid pointer)."""
    rng = random.Random(seed)
    engines = [CythonEngine(AssetClass.EQUITY, EQUITIES), ReferenceEngine(AssetClass.EQUITY, EQUITIES)]
    ids = _load(engines, rng, 300)
    victims = rng.sample(ids, 60)
    packed = array("q", victims + victims[:40] + victims[10:20]).tobytes()
    native, reference = (e.cancel_orders_columns(6_000, packed) for e in engines)
    assert native == reference
    assert sorted(array("q", native[0]).tolist()) == sorted(victims)
    assert engines[0].digest() == engines[1].digest()
    more = [NewOrder(400 + k, 7_000 + k, EQUITIES[0].instrument_id, 400 + k, 1001, 1, 1, 1,
                     EQUITIES[0].reference_price - EQUITIES[0].tick_size, EQUITIES[0].lot_size) for k in range(80)]
    assert engines[0].process_packed(encode_commands(more)) == engines[1].process_packed(encode_commands(more))
    assert engines[0].digest() == engines[1].digest()  # the pool's free slots are whole again


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_both_engines_give_the_same_columns_and_they_are_the_events_split(seed: int) -> None:
    """``cancel_orders_columns``: the Cythonised columns equal the reference engine's, and both are
    ``split_cancelled`` of the events ``cancel_orders`` writes for the same step on a twin engine."""
    rng = random.Random(seed)
    engines = [CythonEngine(AssetClass.EQUITY, EQUITIES), ReferenceEngine(AssetClass.EQUITY, EQUITIES),
               CythonEngine(AssetClass.EQUITY, EQUITIES)]
    ids = _load(engines, rng, 400)
    victims = rng.sample(ids, 180) + [10_000]
    rng.shuffle(victims)
    packed = array("q", victims).tobytes()
    native, reference = (e.cancel_orders_columns(5_000, packed) for e in engines[:2])
    whole = engines[2].cancel_orders(5_000, packed)
    assert native == reference == split_cancelled(whole)
    order_ids, remaining, others, count = native
    events = decode_events(whole)
    cancels = [ev for ev in events if type(ev) is Cancelled]
    assert count == len(events) and len(others) == (len(events) - len(cancels)) * 128
    assert array("q", order_ids).tolist() == [ev.order_id for ev in cancels]
    assert array("q", remaining).tolist() == [ev.remaining for ev in cancels]
    assert decode_events(others) == [ev for ev in events if type(ev) is not Cancelled]
    assert engines[0].digest() == engines[1].digest() == engines[2].digest()
    assert engines[0].cancel_orders_columns(5_001, packed) == engines[1].cancel_orders_columns(5_001, packed) \
        == (b"", b"", b"", 0), "nothing left to cancel: no step"
    # and everything left, without a list: the same columns in both engines, then empty books
    survivors = sorted(set(ids) - set(victims))
    native, reference = (e.cancel_all_columns(6_000) for e in engines[:2])
    assert native == reference and sorted(array("q", native[0]).tolist()) == survivors
    assert native == split_cancelled(engines[2].cancel_orders(6_000, array("q", survivors).tobytes()))
    assert engines[0].digest() == engines[1].digest() == engines[2].digest()
    assert all(not e.orders(i.instrument_id) for e in engines for i in EQUITIES)
    assert engines[0].cancel_all_columns(6_001) == engines[1].cancel_all_columns(6_001) == (b"", b"", b"", 0)


def _flow(rng: random.Random, first: int, n: int, icebergs: bool = True) -> bytes:
    """``n`` limit orders from order id ``first`` on every equity, both sides, some crossing, some
    icebergs (display below quantity): levels of several orders, hidden quantity, trades."""
    commands = []
    for oid in range(first, first + n):
        inst = rng.choice(EQUITIES)
        side = rng.choice((1, 2))
        ticks = rng.randint(-2, 12) * (-1 if side == 1 else 1)  # a few cross the touch
        qty = inst.lot_size * rng.randint(1, 6)
        display = inst.lot_size if icebergs and qty > inst.lot_size and rng.random() < 0.3 else 0
        commands.append(NewOrder(oid, 1_000 + oid, inst.instrument_id, oid, 1001 + oid % 3, side, 1, 1,
                                 inst.reference_price + ticks * inst.tick_size, qty, display))
    return encode_commands(commands)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_cancelling_everything_at_once_is_the_same_step_as_cancelling_every_order_by_id(seed: int) -> None:
    """``cancel_all_columns`` empties the books whole (``_remove_everything``): the same columns, byte
    for byte, as the reference engine and as ``cancel_orders_columns`` of every resting id on a twin,
    the same digest, and the engines go on alike afterwards (the freed slots and maps are sound)."""
    rng = random.Random(seed)
    engines = [CythonEngine(AssetClass.EQUITY, EQUITIES), ReferenceEngine(AssetClass.EQUITY, EQUITIES),
               CythonEngine(AssetClass.EQUITY, EQUITIES)]
    flow = _flow(rng, 1, 600)
    assert len({e.process_packed(flow) for e in engines}) == 1
    resting = sorted(o.order_id for i in EQUITIES for o in engines[1].orders(i.instrument_id))
    assert len(resting) > 100
    native, reference = (e.cancel_all_columns(7_000) for e in engines[:2])
    twin = engines[2].cancel_orders_columns(7_000, array("q", resting).tobytes())
    assert native == reference == twin
    assert sorted(array("q", native[0]).tolist()) == resting
    assert engines[0].digest() == engines[1].digest() == engines[2].digest()
    gone = array("q", resting).tobytes()  # no engine still knows any of them
    assert all(e.cancel_orders_columns(7_000, gone) == (b"", b"", b"", 0) for e in engines)
    assert all(e.order(i.instrument_id, oid) is None for e in engines[:2] for i in EQUITIES for oid in resting[:50])
    later = _flow(rng, 601, 600)  # refill the emptied books: slots, levels and ids reused
    assert len({e.process_packed(later) for e in engines}) == 1
    assert engines[0].digest() == engines[1].digest() == engines[2].digest()
    assert engines[0].cancel_all_columns(7_001) == engines[1].cancel_all_columns(7_001)


@pytest.mark.parametrize("engine_type", [CythonEngine, ReferenceEngine])
def test_an_engine_with_none_of_the_orders_changes_nothing(engine_type) -> None:
    engine = engine_type(AssetClass.EQUITY, EQUITIES)
    ids = _load([engine], random.Random(5), 40)
    before = (engine.digest(), engine.last_seq)
    assert engine.cancel_orders(9_999, array("q", [i + 1_000 for i in ids]).tobytes()) == b""
    assert (engine.digest(), engine.last_seq) == before, "no step: the hub sends every engine the whole list"
    assert engine.cancel_orders(9_999, array("q", ids[:3]).tobytes()) and engine.last_seq == 9_999


def test_the_cython_engine_refuses_a_torn_id_buffer() -> None:
    with pytest.raises(ValueError):
        CythonEngine(AssetClass.EQUITY, EQUITIES).cancel_orders(1, b"\x01\x02\x03")


@pytest.mark.parametrize("seed", [4, 5])
def test_bulk_risk_release_equals_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    engines = [RiskEngine(RiskConfig(), DEFAULT_INSTRUMENTS) for _ in range(2)]
    live = []
    for oid in range(1, 600):
        inst = rng.choice(DEFAULT_INSTRUMENTS)
        pid = rng.choice(("scalper-1", "scalper-2", "mm-1"))
        side = rng.choice((1, 2))
        qty = inst.lot_size * rng.randint(1, 4)
        for risk in engines:
            risk.on_order_entered(oid, pid, "", oid, inst.instrument_id, side, inst.reference_price, qty,
                                  throttled=False)
        live.append(oid)
        if oid % 7 == 0:  # some fills change the positions and remaining quantities on the way
            for risk in engines:
                risk.on_trade(oid, inst.instrument_id, inst.reference_price, inst.lot_size, pid, "inst-1",
                              buy_order_id=oid if side == 1 else 0)
    doomed = rng.sample(live, 400) + [99_999]
    for oid in doomed:
        engines[0].on_order_done(9_000, oid)
    engines[1].on_orders_done(9_000, doomed)
    assert engines[0].state_digest() == engines[1].state_digest()
    engines[1].verify()  # every derived cache (open quantities, scans, margin) matches the primary state
    for pid in ("scalper-1", "scalper-2", "mm-1"):
        assert engines[0].margin(pid) == engines[1].margin(pid)


def _many(rh: RiskHub, n: int, owners: tuple[str, ...] = ("scalper-1", "scalper-2", "mm-1")) -> set[int]:
    """``n`` resting orders over every instrument and the ``owners`` in turn (one owner: spread over
    time, inside the default 50 orders/s per participant and instrument)."""
    ids = set()
    for i in range(n):
        if len(owners) == 1:
            rh.clock.now += 25_000_000
        inst = DEFAULT_INSTRUMENTS[i % len(DEFAULT_INSTRUMENTS)]
        side = cpb.BUY if i % 2 else cpb.SELL
        ticks = (1 + (i // 16) % 40) * (-1 if side == cpb.BUY else 1)
        sent = rh.order(owners[i % len(owners)], inst.symbol, side, inst.reference_price + ticks * inst.tick_size,
                        inst.lot_size)
        assert sent.accepted, sent
        ids.add(sent.order_id)
    return ids


def test_a_kill_cancels_in_steps_that_replay_to_the_signed_digest(make_hub, monkeypatch) -> None:
    """A participant's kill names its orders by id and cancels them in steps (an asset-class kill
    too; a hub-wide one takes every book at once, below)."""
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_STEP", 100)  # several steps per class
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_CHUNK", 150)
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 640, owners=("scalper-1",))
    kill_seq = rh.kill(Scope.PARTICIPANT, "scalper-1")
    assert rh.resting_ids() == set() and rh.hub.risk.open_order_ids() == []
    assert rh.hub.unsettled_risk_cancels == 0
    steps = risk_cancel_records(rh.hub.journal)
    assert len(steps) == 7 * 4, "640 orders in steps of 100 (7), one record per asset class in each step"
    assert [s for s, _ in steps] == list(range(kill_seq + 1, kill_seq + 1 + len(steps))), "consecutive, after the kill"
    assert all(d["settle"] == "deferred" for _, d in steps)
    settles = admin_records(rh.hub.journal, "risk_settle")
    assert [d["orders"] for _, d in settles] == [150, 150, 150, 150, 40], "settled afterwards, 150 at a time"
    assert [s for s, _ in settles] == list(range(steps[-1][0] + 1, steps[-1][0] + 1 + len(settles)))
    cancelled_in_order = [oid for _, d in steps for oid in risk_cancel_orders(d)]
    assert [d["last_order"] for _, d in settles] == [cancelled_in_order[i - 1] for i in (150, 300, 450, 600, 640)]
    assert set(ledger_cancels(rh.hub.journal)) == ids
    digest = rh.hub.state_digest()
    history = {pid: [(r.order_id, r.cancel_reason) for r in rh.hub.executions(rh.who[pid], kill_seq, 0)]
               for pid in ("scalper-1",)}
    assert sum(len(v) for v in history.values()) == len(ids)
    assert {reason for v in history.values() for _, reason in v} == {cpb.CANCEL_RISK}

    rh.restart()
    assert rh.hub.recovery.checkpoint_verified
    assert rh.hub.state_digest() == digest, "the replayed steps rebuild the exact state"
    assert rh.resting_ids() == set()
    assert {pid: [(r.order_id, r.cancel_reason) for r in rh.hub.executions(rh.who[pid], kill_seq, 0)]
            for pid in history} == history, "and the execution history"


class _Crash(Exception):
    pass


def test_a_crash_between_the_cancels_and_their_settling_is_finished_on_restart(make_hub, monkeypatch) -> None:
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_CHUNK", 50)
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 120)
    settle = rh.hub._settle_risk_cancels
    calls = []

    def settle_once_then_crash(limit: int) -> int:
        if calls:
            raise _Crash
        calls.append(limit)
        return settle(limit)

    monkeypatch.setattr(rh.hub, "_settle_risk_cancels", settle_once_then_crash)
    with pytest.raises(_Crash):
        rh.kill(Scope.HUB, "")
    assert rh.hub.unsettled_risk_cancels == 70, "every order out of the books, 50 settled, 70 not"
    assert len(rh.resting_ids()) == 70 and len(rh.hub.risk.open_order_ids()) == 70
    out_of_books = {oid for _, d in risk_cancel_records(rh.hub.journal) for oid in risk_cancel_orders(d)}
    assert out_of_books == ids

    rh.restart()  # replays the cancels and the one settle step, then settles the rest
    assert rh.hub.recovery.checkpoint_verified and rh.hub.recovery.risk_cancels_settled == 70
    assert rh.hub.unsettled_risk_cancels == 0
    assert rh.resting_ids() == set() and rh.hub.risk.open_order_ids() == []
    assert sum(d["orders"] for _, d in admin_records(rh.hub.journal, "risk_settle")) == 120
    reports = [r for pid in ("scalper-1", "scalper-2", "mm-1") for r in rh.hub.executions(rh.who[pid], 0, 0)
               if r.exec_type == cpb.EXEC_CANCELLED]
    assert sorted(r.order_id for r in reports) == sorted(ids) and {r.cancel_reason for r in reports} == {cpb.CANCEL_RISK}
    digest = rh.hub.state_digest()
    rh.restart()
    assert rh.hub.recovery.risk_cancels_settled == 0 and rh.hub.state_digest() == digest


def test_a_crash_after_the_kill_record_before_its_cancels_is_finished_on_restart(make_hub, monkeypatch) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 60)

    def crash(*_args, **_kwargs):
        raise _Crash

    monkeypatch.setattr(rh.hub, "_cancel_for_risk", crash)
    with pytest.raises(_Crash):
        rh.kill(Scope.HUB, "")
    assert rh.resting_ids() == ids and risk_cancel_records(rh.hub.journal) == [], "the switch on record, no cancel"

    rh.restart()
    assert rh.hub.recovery.checkpoint_verified and rh.hub.recovery.interrupted_kill_cancels == 60
    assert rh.resting_ids() == set() and rh.hub.risk.open_order_ids() == []
    ((resume_seq, resume),) = admin_records(rh.hub.journal, "risk_resume_kill")
    assert resume["orders"] == 60
    cancels = ledger_cancels(rh.hub.journal)
    assert set(cancels) == ids and all(seq > resume_seq for seq in cancels.values())
    digest = rh.hub.state_digest()
    rh.restart()
    assert rh.hub.recovery.interrupted_kill_cancels == 0 and rh.hub.state_digest() == digest


def test_a_crash_before_a_reduce_only_kills_cancels_is_finished_on_restart(make_hub, monkeypatch) -> None:
    """A REDUCE_ONLY switch cancels every order in its scope, then admits reducing orders, which may
    rest: after a stop between the switch and its cancels, the restart cancels the orders the
    switch's record named and leaves the reducing order entered since. Before, nothing resumed a
    REDUCE_ONLY switch: the killed participant's orders rested, and traded, on."""
    rh: RiskHub = make_hub(durable=True)
    rh.trade("AAPL", P, 10, buyer="scalper-1", seller="scalper-2")  # scalper-1 is long 10
    doomed = {rh.buy("scalper-1", "AAPL", P - k * TICK, 1).order_id for k in range(1, 4)}
    doomed.add(rh.sell("scalper-1", "AAPL", P + 5 * TICK, 2).order_id)

    def crash(*_args, **_kwargs):
        raise _Crash

    with monkeypatch.context() as patched:
        patched.setattr(rh.hub, "_cancel_for_risk", crash)
        with pytest.raises(_Crash):
            rh.hub.kill(rh.who["operator"], Scope.PARTICIPANT, "scalper-1", mode=KillMode.REDUCE_ONLY)
    assert rh.resting_ids("scalper-1") == doomed and risk_cancel_records(rh.hub.journal) == []
    reducing = rh.sell("scalper-1", "AAPL", P + 9 * TICK, 3)
    assert reducing.accepted, "reduce-only admits a reducing order"
    assert rh.resting_ids("scalper-1") == doomed | {reducing.order_id}

    rh.restart()
    assert rh.hub.recovery.checkpoint_verified and rh.hub.recovery.interrupted_risk_cancels == len(doomed)
    assert rh.resting_ids("scalper-1") == {reducing.order_id}
    assert set(rh.hub.risk.open_order_ids("scalper-1")) == {reducing.order_id}
    ((resume_seq, resume),) = admin_records(rh.hub.journal, "risk_resume_cancels")
    assert resume["orders"] == len(doomed)
    cancels = ledger_cancels(rh.hub.journal)
    assert doomed <= set(cancels) and all(cancels[o] > resume_seq for o in doomed)
    digest = rh.hub.state_digest()
    rh.restart()
    assert rh.hub.recovery.interrupted_risk_cancels == 0 and rh.hub.state_digest() == digest
    assert rh.resting_ids("scalper-1") == {reducing.order_id}


def test_risk_cancel_reports_page_in_order_after_what_was_reported_meanwhile(make_hub, monkeypatch) -> None:
    """A kill's CANCELLED reports reach the participant at its settle step, after what other
    commands reported between the cancel step and it, and carry the settle's sequence: a client
    that read its reports up to the last one it saw and asks for later ones gets them. Before, they
    carried the cancel step's (older) sequence and ``GetExecutions(after_sequence)`` stepped over them."""
    rh: RiskHub = make_hub()
    hub, me = rh.hub, rh.who["scalper-1"]
    btc = next(i for i in DEFAULT_INSTRUMENTS if i.symbol == "BTC-USD")
    doomed = {rh.buy("scalper-1", "BTC-USD", btc.reference_price - k * btc.tick_size, btc.lot_size).order_id
              for k in range(1, 4)}
    with monkeypatch.context() as patched:
        patched.setattr(hub, "drain_risk_cancels", lambda *a, **k: 0)  # the steps are taken by hand below
        rh.kill(Scope.ASSET_CLASS, "CRYPTO")
        with hub._lock:
            hub._risk_cancel_step(hub.RISK_CANCEL_CHUNK)  # out of the book; not settled yet
        engine = hub.engines[AssetClass.CRYPTO]
        assert all(engine.order(btc.instrument_id, oid) is None for oid in doomed)
        assert hub.unsettled_risk_cancels == 3
        meanwhile = rh.buy("scalper-1", "AAPL", P - TICK, 100)  # another engine, meanwhile
        assert meanwhile.accepted
        seen = hub.executions(me, 0, 0)
        assert seen[-1].order_id == meanwhile.order_id
        assert not any(r.cancel_reason == cpb.CANCEL_RISK for r in seen)
        with hub._lock:
            hub._risk_cancel_step(hub.RISK_CANCEL_CHUNK)  # the settle step
    later = hub.executions(me, seen[-1].sequence, 0)
    assert {r.order_id for r in later} == doomed and {r.exec_type for r in later} == {cpb.EXEC_CANCELLED}
    (settle_seq,) = [seq for seq, detail in rh.admin_details() if detail["action"] == "risk_settle"]
    assert {r.sequence for r in later} == {settle_seq} and settle_seq > seen[-1].sequence
    every = hub.executions(me, 0, 0)
    assert [r.sequence for r in every] == sorted(r.sequence for r in every)


def test_only_block_switches_leave_orders_to_cancel_after_a_restart(make_hub) -> None:
    rh: RiskHub = make_hub()
    ids = _many(rh, 48)
    risk, ts = rh.hub.risk, rh.clock()
    owned = {pid: {o for o in ids if rh.hub._orders[o].participant_id == pid} for pid in ("scalper-1", "scalper-2")}
    crypto = {o for o in ids if rh.hub.instruments[rh.hub._orders[o].instrument_id].asset_class == AssetClass.CRYPTO}
    # the switches set on the risk engine alone: as if the hub had stopped before any cancel
    risk.kill(ts, Scope.PARTICIPANT, "scalper-1", mode=KillMode.REDUCE_ONLY)
    assert risk.orders_under_block() == (), "reduce-only admits reducing orders, which may rest"
    risk.kill(ts, Scope.PARTICIPANT, "scalper-2", mode=KillMode.BLOCK)
    assert set(risk.orders_under_block()) == owned["scalper-2"]
    risk.kill(ts, Scope.ASSET_CLASS, AssetClass.CRYPTO, mode=KillMode.BLOCK)
    assert set(risk.orders_under_block()) == owned["scalper-2"] | crypto
    risk.kill(ts, Scope.HUB, None, mode=KillMode.BLOCK)
    assert risk.orders_under_block() == tuple(sorted(ids))


def test_recovery_refuses_a_settle_step_that_settles_other_orders(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    _many(rh, 12)
    rh.kill(Scope.HUB, "")
    (seq, detail), = admin_records(rh.hub.journal, "risk_settle")
    rec = Record(RecordType.ADMIN, seq, 1, detail=b"")
    other = make_hub(durable=True)
    _many(other, 12)
    with other.hub._lock:
        other.hub._cancel_for_risk(sorted(other.hub._orders))
    with pytest.raises(RecoveryError, match="settles other risk cancels"):
        _replay_risk_settle(other.hub, 9, rec, detail | {"last_order": detail["last_order"] + 1})
    with pytest.raises(RecoveryError, match="settles other risk cancels"):
        _replay_risk_settle(make_hub().hub, 9, rec, detail)  # nothing left unsettled there


def test_recovery_refuses_a_risk_cancel_step_that_does_not_reproduce(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    _many(rh, 12)
    rh.kill(Scope.HUB, "")
    (seq, detail), *_ = risk_cancel_records(rh.hub.journal)
    fresh = make_hub()  # a hub that never saw those orders: the step cancels nothing there
    rec = Record(RecordType.ADMIN, seq, 1, detail=b"")
    with pytest.raises(RecoveryError, match="produced different events"):
        _replay_risk_cancel(fresh.hub, 7, rec, detail)

    other = make_hub(durable=True)
    _many(other, 12)  # the same orders (and ids): the events reproduce, but the record lists other quantities
    wrong = detail | {"remaining_le64": pack_int64s(array("q", [q + 1 for q in risk_cancel_remaining(detail)]).tobytes())}
    with pytest.raises(RecoveryError, match="lists other risk cancels"):
        _replay_risk_cancel(other.hub, 7, rec, wrong)


def test_projections_show_each_risk_cancel_as_a_venue_cancel(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 24)
    rh.kill(Scope.HUB, "")
    rh.hub.journal.flush()
    engine = rh.hub.journal.engine
    rebuild_projections(engine, rh.hub.journal)
    with engine.connect() as conn:
        rows = conn.execute(proj_order_event.select().where(proj_order_event.c.event == "CAMO")).all()
        orders = conn.execute(proj_order.select()).all()
    assert sorted(r.order_id for r in rows) == sorted(ids)
    assert {(r.reason, r.remaining) for r in rows} == {(int(CancelReason.RISK), 0)}
    assert {o.status for o in orders} == {"CANCELLED"}


def test_a_user_cancel_is_still_reported_as_user_requested(make_hub) -> None:
    rh: RiskHub = make_hub()
    (oid,) = _many(rh, 1)
    assert rh.cancel("scalper-1", DEFAULT_INSTRUMENTS[0].symbol, oid).accepted
    (report,) = [r for r in rh.hub.executions(rh.who["scalper-1"], 0, 0) if r.exec_type == cpb.EXEC_CANCELLED]
    assert report.cancel_reason == cpb.CANCEL_USER_REQUESTED


def test_an_order_arriving_during_a_kill_is_answered_without_waiting_for_the_whole_kill(make_hub, monkeypatch) -> None:
    # Steps of 20 orders with 20 ms between them: a 600-order kill drains for about 1.2 s.
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_STEP", 20)
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_CHUNK", 20)
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_PAUSE_S", 0.02)
    rh: RiskHub = make_hub(durable=True)
    doomed: set[int] = set()
    for _ in range(3):  # 25 orders per instrument at a time: under the 50 orders/s rate limit
        doomed |= _many(rh, 200, owners=("scalper-1",))
        rh.clock.advance(SEC)
    killer = threading.Thread(target=rh.kill, args=(Scope.PARTICIPANT, "scalper-1"))
    killer.start()
    try:
        deadline = time.monotonic() + 10
        while len(risk_cancel_records(rh.hub.journal)) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # the kill is draining
        bystander = rh.buy("scalper-2", "AAPL", P - 20 * TICK, 1)
        still_pending = len(rh.hub._risk_cancels) + rh.hub.unsettled_risk_cancels
        assert bystander.accepted
        assert still_pending > 0 and killer.is_alive(), "answered while the kill was still cancelling"
    finally:
        killer.join(30)
    assert not killer.is_alive()
    assert not doomed & rh.resting_ids(), "the kill still cancelled every order in scope"
    assert bystander.order_id in rh.resting_ids()


def test_each_cancel_step_commits_its_records_itself_and_takes_no_checkpoint(make_hub, monkeypatch) -> None:
    """Every risk_cancel step is on record before the next one starts, written by the killing thread
    (not swept up by the ledger's writer thread mid-step), and no checkpoint (a digest of every
    resting order) is taken between the first cancel step and the last, however due one is."""
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_STEP", 100)
    rh: RiskHub = make_hub(durable=True)
    _many(rh, 450, owners=("scalper-2",))
    journal = rh.hub.journal
    log: list[tuple[str, object]] = []
    append, write, checkpoint = journal.append, journal._write, journal.checkpoint

    def noting_append(entry):
        ticket = append(entry)
        if b'"risk_cancel"' in entry.detail:
            log.append(("cancel", ticket))
        return ticket

    def noting_write(batch):
        tail = write(batch)
        log.append(("write", (threading.current_thread().name, [item[1] for item in batch if item[0] == "entry"])))
        return tail

    def noting_checkpoint(digest, ts):
        log.append(("checkpoint", None))
        return checkpoint(digest, ts)

    monkeypatch.setattr(journal, "append", noting_append)
    monkeypatch.setattr(journal, "_write", noting_write)
    monkeypatch.setattr(journal, "checkpoint", noting_checkpoint)
    monkeypatch.setattr(journal, "checkpoint_due", lambda: True)  # one is due all the time
    rh.kill(Scope.PARTICIPANT, "scalper-2")
    assert rh.resting_ids() == set()
    cancels = [i for i, (what, _) in enumerate(log) if what == "cancel"]
    assert len(cancels) == 5 * 4, "450 orders in 5 steps, one record per asset class"
    assert not [what for what, _ in log[cancels[0]:cancels[-1]] if what == "checkpoint"]
    assert [what for what, _ in log[cancels[-1]:]].count("checkpoint") >= 1, "the settle steps take it"
    me = threading.current_thread().name
    for k in range(0, len(cancels), 4):  # each step: its 4 records, then this thread's commit of them
        tickets = [log[i][1] for i in cancels[k:k + 4]]
        after = log[cancels[k + 3] + 1]
        assert after[0] == "write" and after[1][0] == me and set(tickets) <= set(after[1][1]), log[cancels[k]:]


def test_risk_cancel_records_of_the_earlier_format_still_replay(make_hub) -> None:
    """Ledgers written before the packed format list the orders and quantities as JSON lists and
    hash the whole event buffer (``events_sha256``); recovery still reproduces and checks them."""
    rh: RiskHub = make_hub(durable=True)
    _many(rh, 12)
    rh.kill(Scope.HUB, "")
    (seq, detail), *_ = risk_cancel_records(rh.hub.journal)
    orders = risk_cancel_orders(detail)
    twin = make_hub(durable=True)
    _many(twin, 12)  # the same orders and ids: the engine the earlier hub would have cancelled in
    evbuf = twin.hub.engines[AssetClass(detail["asset_class"])].cancel_orders(seq, array("q", orders).tobytes())
    legacy = {"action": "risk_cancel", "asset_class": detail["asset_class"], "orders": orders,
              "remaining": risk_cancel_remaining(detail), "events": len(evbuf) // 128,
              "events_sha256": hashlib.sha256(evbuf).hexdigest(), "settle": "deferred"}
    rec = Record(RecordType.ADMIN, seq, 1, detail=b"")
    replayed = make_hub(durable=True)
    _many(replayed, 12)
    _replay_risk_cancel(replayed.hub, 7, rec, legacy)
    assert replayed.hub.unsettled_risk_cancels == len(orders)

    tampered = make_hub(durable=True)
    _many(tampered, 12)
    with pytest.raises(RecoveryError, match="produced different events"):
        _replay_risk_cancel(tampered.hub, 7, rec, legacy | {"events_sha256": "00" * 32})


@given(st.lists(st.tuples(st.integers(1, 2**63 - 1), st.integers(0, 2**63 - 1)), max_size=40),
       st.binary(max_size=3 * 128).map(lambda b: b[:len(b) // 128 * 128]), st.integers(1, 4))
def test_the_risk_cancel_detail_is_the_canonical_json_of_its_fields(cancels, others, asset_class) -> None:
    cols = CancelStepEvents(array("q", [o for o, _ in cancels]).tobytes(), array("q", [r for _, r in cancels]).tobytes(),
                            others, len(cancels) + len(others) // 128)
    expected = canonical_json({
        "action": "risk_cancel", "asset_class": asset_class, "cancelled": len(cancels), "digest_sha256": cols.digest(),
        "events": cols.events, "orders_le64": pack_int64s(cols.order_ids), "remaining_le64": pack_int64s(cols.remaining),
        "settle": "deferred"})
    assert risk_cancel_detail(asset_class, cols) == expected
    assert risk_cancel_orders(json.loads(expected)) == [o for o, _ in cancels]


def test_no_checkpoint_is_taken_while_a_kill_has_orders_to_cancel_or_settle(make_hub, monkeypatch) -> None:
    """A due checkpoint digests every resting order (milliseconds with thousands): neither the kill's
    own record, nor an order refused meanwhile, nor a cancel or settle step before the last takes
    it; the step that settles the last order does."""
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_CHUNK", 20)
    rh: RiskHub = make_hub(durable=True)
    _many(rh, 90)
    hub, journal = rh.hub, rh.hub.journal
    pending_at_checkpoint: list[int] = []
    checkpoint = journal.checkpoint

    def noting_checkpoint(digest, ts):
        pending_at_checkpoint.append(len(hub._risk_cancels) + hub.unsettled_risk_cancels)
        return checkpoint(digest, ts)

    settle = hub._settle_risk_cancels
    refused = []

    def settle_and_send_an_order(limit: int) -> int:
        done = settle(limit)
        if not refused:  # an order arriving mid-kill: refused, and journaled, with a checkpoint due
            refused.append(rh.order("scalper-1", "AAPL", cpb.BUY, 189_0000, 100))
        return done

    monkeypatch.setattr(journal, "checkpoint_due", lambda: True)  # one is due all the time
    monkeypatch.setattr(journal, "checkpoint", noting_checkpoint)
    monkeypatch.setattr(hub, "_settle_risk_cancels", settle_and_send_an_order)
    rh.kill(Scope.HUB, "")
    assert refused and not refused[0].accepted
    assert pending_at_checkpoint and set(pending_at_checkpoint) == {0}, pending_at_checkpoint


def test_a_hub_wide_kill_takes_every_book_at_once_without_listing_the_ids(make_hub, monkeypatch) -> None:
    """A BLOCK switch over the whole hub: each engine drops every resting order in one native call
    (``cancel_all_columns``), however small the step size; the records still list every order, the
    settle steps follow, and a restart replays them (by id) to the signed digest."""
    monkeypatch.setattr(type(make_hub().hub), "RISK_CANCEL_STEP", 100)
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 640)
    calls: list[str] = []
    for ac, engine in list(rh.hub.engines.items()):
        class Spy:
            def __init__(self, inner) -> None:
                self._inner = inner

            def cancel_all_columns(self, seq: int):
                calls.append("all")
                return self._inner.cancel_all_columns(seq)

            def cancel_orders_columns(self, seq: int, order_ids: bytes):
                calls.append("by id")
                return self._inner.cancel_orders_columns(seq, order_ids)

            def __getattr__(self, name: str):
                return getattr(self._inner, name)

        rh.hub.engines[ac] = Spy(engine)
    kill_seq = rh.kill(Scope.HUB, "")
    assert calls == ["all"] * 4, "one call per engine, no id list"
    assert rh.resting_ids() == set() and rh.hub.risk.open_order_ids() == [] and rh.hub.unsettled_risk_cancels == 0
    steps = risk_cancel_records(rh.hub.journal)
    assert [s for s, _ in steps] == [kill_seq + 1, kill_seq + 2, kill_seq + 3, kill_seq + 4], "one step, a record a class"
    assert sorted(oid for _, d in steps for oid in risk_cancel_orders(d)) == sorted(ids)
    digest = rh.hub.state_digest()
    rh.restart()
    assert rh.hub.recovery.checkpoint_verified and rh.hub.state_digest() == digest


def test_an_asset_class_kill_names_its_orders_and_leaves_the_other_books(make_hub) -> None:
    rh: RiskHub = make_hub(durable=True)
    ids = _many(rh, 64)
    equities = {i.instrument_id for i in EQUITIES}
    in_class = {oid for oid in ids if rh.hub._orders[oid].instrument_id in equities}
    rh.kill(Scope.ASSET_CLASS, "EQUITY")
    assert rh.resting_ids() == ids - in_class and in_class
    (step,) = risk_cancel_records(rh.hub.journal)
    assert sorted(risk_cancel_orders(step[1])) == sorted(in_class)
