"""Start-up recovery from the ledger (SQLite and PostgreSQL): a restarted hub rebuilds the same
books, registry, positions, halts and quotes, proves the digest at the last signed checkpoint and
continues the sequence without a gap; sessions left open with cancel-on-disconnect lose their DAY
orders; a ledger the hub cannot replay exactly stops it before it ever reports SERVING."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.client import HubClient
from hub.config import HubConfig
from hub.core import Hub
from hub.recovery import RecoveryError
from hub.server import run_server
from hub.v1 import common_pb2 as cpb
from ledger.records import RecordType, decode
from matching.types import RECORD_SIZE, Cancelled, Trade, decode_events, encode_event
from tests.ledger.conftest import (
    TICK,
    LedgerDB,
    P,
    assert_seq_gap_free,
    build_ledger,
    drive_mixed,
    identities,
    order,
    start_hub,
    stop_hub,
    wait_for,
)

HOST = "127.0.0.1"


def _config(port: int = 0) -> HubConfig:
    return HubConfig.default().with_network(host=HOST, port=port)


def _client(port: int, participant: str) -> HubClient:
    return HubClient(f"{HOST}:{port}", f"dev-{participant}", timeout=10)


def _meta(meta) -> tuple:
    """Every registry field of an order; a quote's entry time is left out (no rule reads it: quotes
    have no minimum resting time)."""
    return dataclasses.astuple(dataclasses.replace(meta, entry_ns=0) if meta.is_quote else meta)


def snapshot(hub: Hub) -> dict:
    """What a restart must give back: engines (digest), registry, positions, halts, quotes, sequence."""
    who = identities(hub.config)
    with hub._lock:
        orders = {p: [(oid, _meta(m), view) for m, oid, view in hub.open_orders(who[p])[0]] for p in who}
        positions = {p: [(a, i, (pos.bought, pos.sold, pos.net_cost_raw)) for a, i, pos in hub.positions(who[p])]
                     for p in who}
        halts = {s: hub.is_halted(i.instrument_id) for s, i in hub.by_symbol.items()}
        quotes = {k: sorted(q for q in v if q in hub._orders) for k, v in hub._quotes.items()}
        return {"digest": hub.state_digest_bytes(), "last_seq": hub.last_sequence, "orders": orders,
                "positions": positions, "halts": halts, "quotes": {k: v for k, v in quotes.items() if v}}


def _grpc_activity(port: int, hub: Hub) -> None:
    """Mass quotes, a halt left in force, a session with cancel-on-disconnect closed cleanly."""
    with _client(port, "mm-1") as mm, _client(port, "operator") as op, _client(port, "scalper-1") as sc:
        ack = mm.mass_quote([("AAPL", P - 6 * TICK, 3, P + 6 * TICK, 3), ("ESZ6", 6000_00 - 50, 1, 6000_00 + 50, 1)])
        assert ack.accepted and all(q.bid_order_id and q.ask_order_id for q in ack.quotes)
        assert op.halt("GBPUSD").sequence
        session = sc.open_session(cancel_on_disconnect=True, timeout=10)
        assert session.submit("AAPL", "buy", 5, P - 8 * TICK, time_in_force="gtc").accepted
        assert session.submit("AAPL", "buy", 5, P - 9 * TICK, time_in_force="day").accepted
        session.close()
        wait_for(lambda: hub.status()["sessions"] == 0, what="the session to end on the hub")


def test_a_restarted_hub_rebuilds_identical_state_and_continues_the_sequence(ledger_db: LedgerDB) -> None:
    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, port):
        drive_mixed(hub, 10)
        _grpc_activity(port, hub)
        before = snapshot(hub)
    assert any(before["positions"].values()) and any(before["orders"].values()) and before["quotes"]
    assert before["halts"]["GBPUSD"] and not before["halts"]["AAPL"]
    size = len(ledger_db.records())

    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, port):
        report = hub.recovery
        assert report.checkpoint_verified, "the rebuilt digest must be proven at the last checkpoint"
        assert report.records == report.checkpoint_size == size
        assert report.orphaned_day_orders_cancelled == 0
        after = snapshot(hub)
        assert after == before
        with _client(port, "scalper-1") as sc:
            ack = sc.submit("AAPL", "sell", 2, P + 20 * TICK)
            assert ack.accepted
            assert ack.sequence == before["last_seq"] + 1, "the sequence continues without a gap"
            assert ack.order_id == ack.sequence
            refused = sc.submit("GBPUSD", "buy", 1_000, 1_27000)
            assert not refused.accepted and refused.reject_reason == cpb.REJECT_INSTRUMENT_HALTED
        with _client(port, "mm-1") as mm:  # the quote registry survived: re-quoting replaces, not adds
            old = set(before["quotes"][("mm-1", 3001, hub.by_symbol["AAPL"].instrument_id)])
            assert mm.mass_quote([("AAPL", P - 7 * TICK, 3, P + 7 * TICK, 3)]).accepted
            live = {o.order_id for o in mm.open_orders("AAPL")}
            assert not old & live and len(live) == 2
    rows = ledger_db.records()
    assert_seq_gap_free(rows)
    assert ledger_db.verify().ok


def test_a_session_left_open_with_cancel_on_disconnect_loses_its_day_orders_on_recovery(ledger_db: LedgerDB) -> None:
    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, port):
        drive_mixed(hub, 3)
        with _client(port, "scalper-2") as unary:
            other_day = unary.submit("AAPL", "buy", 4, P - 3 * TICK, time_in_force="day")
            assert other_day.accepted
            client = _client(port, "scalper-2")
            session = client.open_session(cancel_on_disconnect=True, timeout=10)
            day = session.submit("AAPL", "buy", 5, P - 4 * TICK, time_in_force="day")
            gtc = session.submit("AAPL", "buy", 6, P - 5 * TICK, time_in_force="gtc")
            assert day.accepted and gtc.accepted
            session_id = session.session_id
            before = snapshot(hub)
        # the hub stops with the session still open (the client never closes it)
    client.channel.close()
    assert day.order_id in {o[0] for o in before["orders"]["scalper-2"]}
    open_session_closes = [r for r in ledger_db.records() if r[2] == RecordType.ADMIN
                           and decode(r[3]).detail_json().get("session") == session_id]
    assert [decode(r[3]).detail_json()["action"] for r in open_session_closes] == ["session_open", "session_options"]
    size = len(ledger_db.records())

    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, port):
        report = hub.recovery
        assert report.checkpoint_verified and report.records == size
        assert report.orphaned_day_orders_cancelled == 1
        after = snapshot(hub)
        ids = {o[0] for o in after["orders"]["scalper-2"]}
        assert day.order_id not in ids, "the orphaned session's DAY order must be cancelled"
        assert gtc.order_id in ids, "its GTC order stays"
        assert other_day.order_id in ids, "a DAY order not entered on that session stays"
        expected = {p: [o for o in orders if o[0] != day.order_id] for p, orders in before["orders"].items()}
        assert after["orders"] == expected
        # recovery's own records: the cancel (a command with its event) and the session's close
        tail = ledger_db.records()[size:]
        kinds = [RecordType(r[2]) for r in tail]
        assert kinds[0] == RecordType.COMMAND and kinds[-1] == RecordType.ADMIN
        assert set(kinds[1:-1]) == {RecordType.EVENT}
        events = [ev for r in tail[1:-1] for ev in decode_events(decode(r[3]).engine_record)]
        assert [ev.order_id for ev in events if type(ev) is Cancelled] == [day.order_id]
        assert decode(tail[-1][3]).detail_json() == {"action": "session_close", "session": session_id}
        assert after["last_seq"] == before["last_seq"] + 2
        with _client(port, "scalper-2") as sc:
            assert sc.submit("AAPL", "buy", 1, P - 6 * TICK).sequence == after["last_seq"] + 1
    assert hub.recovery.orphaned_day_orders_cancelled == 1
    assert_seq_gap_free(ledger_db.records())
    assert ledger_db.verify().ok

    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, _):  # the close is journaled: nothing more to do
        assert hub.recovery.orphaned_day_orders_cancelled == 0


# -- ledgers the hub must refuse -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class HealthWatch:
    """Polls the health service of a port from before the hub starts until it is gone."""

    def __init__(self, port: int) -> None:
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(f"{HOST}:{port}")
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.append(self._stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status)
            except grpc.RpcError:
                time.sleep(0.002)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._channel.close()


@contextmanager
def _held_recovery(monkeypatch: pytest.MonkeyPatch, watch: HealthWatch) -> Iterator[None]:
    """Recovery waits until the watcher has seen the hub answer health checks (so the test sees the
    window in which it must say NOT_SERVING), then runs for real."""
    import hub.recovery

    original = hub.recovery.recover

    def held(hub_, store):
        wait_for(lambda: watch.seen, what="a health answer during recovery")
        return original(hub_, store)

    monkeypatch.setattr(hub.recovery, "recover", held)
    yield


def _refused_start(db: LedgerDB, config_changes: dict, monkeypatch: pytest.MonkeyPatch, match: str) -> HealthWatch:
    port = _free_port()
    config = dataclasses.replace(_config(port), **config_changes)
    with HealthWatch(port) as watch, _held_recovery(monkeypatch, watch):
        with pytest.raises(RecoveryError, match=match):
            with run_server(config, db.journal(), grace=0.5):
                pytest.fail("the hub must not serve this ledger")
    assert watch.seen, "the health watcher never reached the hub"
    assert health_pb2.HealthCheckResponse.SERVING not in watch.seen
    return watch


def _instruments_without(symbols: set[str]) -> tuple:
    return tuple(i for i in HubConfig.default().instruments if i.symbol not in symbols)


@pytest.mark.parametrize(("change", "match"), [
    pytest.param(change, match, id=change) for change, match in (
        ("tick_size", "produced different events than the ledger recorded"),
        ("instrument_removed", "produced different events than the ledger recorded"),
        ("engine_removed", r"cannot be replayed by this hub \(KeyError"),
        ("halted_symbol_removed", r"cannot be replayed by this hub \(ValueError"),
        ("instrument_added", "state rebuilt from .* records has digest"),
    )])
def test_a_ledger_written_with_other_instruments_stops_the_hub_before_serving(
        ledger_db: LedgerDB, monkeypatch: pytest.MonkeyPatch, change: str, match: str) -> None:
    build_ledger(ledger_db, rounds=6)
    checkpoints = len(ledger_db.query("SELECT tree_size FROM ledger_checkpoint"))
    size = len(ledger_db.records())
    default = HubConfig.default().instruments
    instruments = {
        "tick_size": tuple(dataclasses.replace(i, tick_size=i.tick_size * 10) if i.symbol == "AAPL" else i
                           for i in default),
        "instrument_removed": _instruments_without({"MSFT"}),
        "engine_removed": _instruments_without({"EURUSD", "GBPUSD"}),  # no FX engine at all
        "halted_symbol_removed": _instruments_without({"GCZ6"}),  # the ledger halts and resumes it
        "instrument_added": default + (dataclasses.replace(default[0], instrument_id=99, symbol="NVDA"),),
    }[change]
    _refused_start(ledger_db, {"instruments": instruments}, monkeypatch, match)
    assert len(ledger_db.records()) == size, "a refused start writes nothing"
    assert len(ledger_db.query("SELECT tree_size FROM ledger_checkpoint")) == checkpoints
    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, _):  # and the right configuration still recovers
        assert hub.recovery.checkpoint_verified


def test_a_refused_start_does_not_sign_the_unverified_tail_of_a_crashed_ledger(
        ledger_db: LedgerDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a crash the records since the last checkpoint are unsigned. A start that fails to
    replay them must not close a block over them with the half-rebuilt digest: that checkpoint
    would make every later start fail, even with the right configuration."""
    build_ledger(ledger_db, rounds=4)
    journal = ledger_db.journal(checkpoint_every=10**9)
    hub = start_hub(journal)
    drive_mixed(hub, 3, seed=5)
    journal.flush()
    journal.close()  # as if killed: no closing checkpoint
    report = ledger_db.verify()
    assert report.ok and report.warnings, "the ledger should end with an unsigned tail"
    checkpoints = ledger_db.query("SELECT tree_size FROM ledger_checkpoint ORDER BY tree_size")
    _refused_start(ledger_db, {"instruments": _instruments_without({"MSFT"})}, monkeypatch,
                   "produced different events")
    assert ledger_db.query("SELECT tree_size FROM ledger_checkpoint ORDER BY tree_size") == checkpoints
    with run_server(_config(), ledger_db.journal(), grace=0.5) as (hub, _):
        assert hub.recovery.checkpoint_verified
        assert hub.recovery.records == len(ledger_db.records())


@pytest.mark.parametrize("where", ["signed", "unsigned"])
def test_a_tampered_event_stops_the_hub_before_serving(ledger_db: LedgerDB, monkeypatch: pytest.MonkeyPatch,
                                                       where: str) -> None:
    """A fill's quantity changed in the database (before or after the last checkpoint): recovery
    finds the payload no longer matches its leaf hash before it replays anything."""
    build_ledger(ledger_db, rounds=10)
    if where == "unsigned":
        journal = ledger_db.journal(checkpoint_every=10**9)
        hub = start_hub(journal)
        drive_mixed(hub, 3, seed=9)
        journal.flush()
        journal.close()
    last_cp = ledger_db.query("SELECT max(tree_size) AS m FROM ledger_checkpoint")[0].m
    rows = ledger_db.records()
    trades = [(r[0], r[3], ev) for r in rows if r[2] == RecordType.EVENT and (r[0] < last_cp) == (where == "signed")
              for ev in decode_events(decode(r[3]).engine_record) if type(ev) is Trade]
    idx, payload, trade = trades[len(trades) // 2]
    engine_at = len(payload) - RECORD_SIZE
    tampered = payload[:engine_at] + encode_event(trade._replace(quantity=trade.quantity + 1))
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_record SET payload = :p WHERE idx = :i", {"p": tampered, "i": idx})
    _refused_start(ledger_db, {}, monkeypatch, f"record {idx} .*payload does not match its leaf hash")
    assert not ledger_db.verify().ok


def test_an_event_rewritten_with_its_hashes_recomputed_is_caught_by_replay(ledger_db: LedgerDB,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker who also recomputes the leaf hash and the chain from there on (but cannot sign)
    is stopped by replay itself: the engine makes a different fill than the stored one."""
    build_ledger(ledger_db, rounds=10)
    journal = ledger_db.journal(checkpoint_every=10**9)  # what follows stays unsigned
    hub = start_hub(journal)
    drive_mixed(hub, 3, seed=9)
    journal.flush()
    journal.close()
    rows = ledger_db.records()
    idx, payload, trade = next((r[0], r[3], ev) for r in reversed(rows) if r[2] == RecordType.EVENT
                               for ev in decode_events(decode(r[3]).engine_record) if type(ev) is Trade)
    last_cp = ledger_db.query("SELECT max(tree_size) AS m FROM ledger_checkpoint")[0].m
    assert idx >= last_cp, "the flow must leave a trade after the last checkpoint"
    tampered = payload[:len(payload) - RECORD_SIZE] + encode_event(trade._replace(quantity=trade.quantity + 1))
    ledger_db.drop_triggers()
    chain = bytes(ledger_db.query("SELECT chain_hash FROM ledger_record WHERE idx = :i", {"i": idx - 1})[0].chain_hash)
    for i, _seq, _rtype, body in (r[:4] for r in rows if r[0] >= idx):
        body = tampered if i == idx else body
        leaf = hashlib.sha256(b"\x00" + body).digest()
        chain = hashlib.sha256(b"hub-ledger/chain/v1" + chain + leaf).digest()
        ledger_db.execute("UPDATE ledger_record SET payload = :p, leaf_hash = :l, chain_hash = :c WHERE idx = :i",
                          {"p": body, "l": leaf, "c": chain, "i": i})
    _refused_start(ledger_db, {}, monkeypatch, "produced different events than the ledger recorded")


# -- what recovery restores beyond the engines' digest -----------------------------------------------


def _history(hub: Hub) -> dict[str, list]:
    who = identities(hub.config)
    return {p: list(hub.executions(who[p], 0, 0)) for p in who}


def _without_times(history: dict[str, list]) -> dict[str, list]:
    out = {}
    for p, reports in history.items():
        copies = [type(r).FromString(r.SerializeToString()) for r in reports]
        for r in copies:
            r.hub_time_ns = 0
        out[p] = copies
    return out


def test_execution_history_is_rebuilt_report_for_report_after_a_restart(ledger_db: LedgerDB) -> None:
    hub = start_hub(ledger_db.journal())
    drive_mixed(hub, 6)
    before = _history(hub)
    stop_hub(hub)
    assert sum(map(len, before.values())) > 50
    after = _history(start_hub(ledger_db.journal()))
    assert _without_times(after) == _without_times(before)


def test_execution_reports_keep_their_hub_time_across_a_restart(ledger_db: LedgerDB) -> None:
    """Replay routes each journal entry's events at that entry's hub time (a replay batch spanning
    entries gave every report the batch's first time, and fees and risk derived from it)."""
    hub = start_hub(ledger_db.journal())
    drive_mixed(hub, 4)
    before = {p: [r.hub_time_ns for r in reports] for p, reports in _history(hub).items()}
    stop_hub(hub)
    after = {p: [r.hub_time_ns for r in reports] for p, reports in _history(start_hub(ledger_db.journal())).items()}
    assert after == before


def test_the_minimum_resting_time_still_applies_after_a_restart(ledger_db: LedgerDB) -> None:
    """Recovery rebuilds each order's entry time and minimum resting time (they were 0, so any
    order that rested through a restart could be cancelled at once)."""
    from hub.fairness import FairnessConfig

    config = dataclasses.replace(HubConfig.default(), fairness=FairnessConfig(min_resting_ns=60 * 10**9))
    who = identities(config)
    hub = start_hub(ledger_db.journal(), config)
    placed, reason, _ = hub.submit_order(who["scalper-1"], order("AAPL", cpb.BUY, P - 10 * TICK, 5))
    assert placed is not None and not reason
    _, early, _ = hub.cancel_order(who["scalper-1"], "AAPL", placed.seq_first)
    assert early, "the control: a cancel right after entry is refused"
    stop_hub(hub)
    hub = start_hub(ledger_db.journal(), config)
    _, reason, text = hub.cancel_order(who["scalper-1"], "AAPL", placed.seq_first)
    assert reason, f"a cancel 60 s early went through after the restart ({text})"


def test_recovery_refuses_a_command_whose_client_order_id_was_rewritten(ledger_db: LedgerDB) -> None:
    """The state digest does not cover client order ids: recovery checks every payload against
    its leaf hash and the chain before replaying it."""
    from ledger.records import encode_command

    build_ledger(ledger_db, rounds=4)
    idx, rec = next((r[0], decode(r[3])) for r in ledger_db.records()
                    if r[2] == RecordType.COMMAND and decode(r[3]).client_order_id)
    forged = encode_command(rec.seq, rec.hub_time_ns, rec.arrival_ns, rec.asset_class, rec.participant, rec.session,
                            "forged-" + rec.client_order_id, rec.is_quote, rec.engine_record)
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_record SET payload = :p WHERE idx = :i", {"p": forged, "i": idx})
    assert not ledger_db.verify().ok, "the control: the verifier sees the rewrite"
    with pytest.raises(RecoveryError, match=f"record {idx} .*leaf hash"):
        start_hub(ledger_db.journal())


def test_a_checkpoint_whose_signature_was_altered_stops_the_hub_before_serving(ledger_db: LedgerDB,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery checks the last checkpoint's signature with the journal's own key, not only its root."""
    build_ledger(ledger_db, rounds=4)
    (last,) = ledger_db.query("SELECT tree_size, note FROM ledger_checkpoint ORDER BY tree_size DESC LIMIT 1")
    body, _, signature_line = last.note.rstrip("\n").rpartition("\n")
    *head, sig = signature_line.split(" ")
    forged_sig = ("A" if sig[10] != "A" else "B").join((sig[:10], sig[11:]))
    forged = body + "\n" + " ".join([*head, forged_sig]) + "\n"
    ledger_db.drop_triggers()
    ledger_db.execute("UPDATE ledger_checkpoint SET note = :n WHERE tree_size = :s", {"n": forged, "s": last.tree_size})
    _refused_start(ledger_db, {}, monkeypatch, f"checkpoint at tree size {last.tree_size}: signature invalid")
