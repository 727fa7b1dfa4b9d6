"""Crash drill: ``python -m hub serve`` under load from several clients (unary orders, order
sessions with cancel-on-disconnect, a market maker's mass quotes) is SIGKILLed at seeded random
moments and restarted on the same ledger. Durability "process" (the default) is what a killed
process tests: every order the hub acknowledged must be in the ledger exactly once, the ledger
must verify, the state the restarted hub rebuilt must equal the state replayed from the ledger
(the books by this test alone, the whole hub state by a fresh hub), and sequence numbers must
continue without a gap across every restart. Recovery times are printed.

``HUB_CRASH_SEED`` picks other kill moments (the seed is printed)."""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from hub.client import HubClient
from hub.config import DEV_PARTICIPANTS, HubConfig
from hub.core import Hub
from hub.recovery import recover
from ledger.acklog import pending_records
from ledger.entries import BLOCK_MIN_COMMANDS, decode_all
from ledger.records import RecordType
from ledger.store import ack_log_path
from matching.engine import create_engine
from matching.instruments import DEFAULT_INSTRUMENTS, by_asset_class
from matching.types import AssetClass, StpMode
from tests.ledger.conftest import TICK, LedgerDB, M, P, assert_seq_gap_free, new_orders_in, wait_for

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HUB_CRASH_SEED", "20260607"))
QUOTE_LEVELS = BLOCK_MIN_COMMANDS // 2 + 4  # two commands a side: an entry block from the first message
SERVING = re.compile(r"^hub serving on 127\.0\.0\.1:(\d+) ")
RECOVERED = re.compile(r"^recovered (\d+) ledger records \((\d+) commands\) in ([0-9.]+)s; "
                       r"sequence resumes after (\d+)")


class HubProcess:
    """``python -m hub serve --port 0`` on a data directory; stdout is read line by line."""

    def __init__(self, data_dir: Path, extra_args: list[str], log: Path) -> None:
        self.args = ["serve", "--port", "0", "--data-dir", str(data_dir), *extra_args]
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.recovered: tuple[int, int, float, int] | None = None  # records, commands, seconds, last seq
        self.ready_s = 0.0

    def start(self, timeout: float = 120.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONUNBUFFERED="1")
        started = time.monotonic()
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hub", *self.args], stdout=subprocess.PIPE,
                                         stderr=log, text=True, cwd=ROOT, env=env)
        lines: queue.Queue = queue.Queue()

        def read(stream) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, args=(self.proc.stdout,), daemon=True).start()
        self.recovered = None
        while True:
            try:
                line = lines.get(timeout=max(0.1, timeout - (time.monotonic() - started)))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"hub did not report serving within {timeout} s (log: {self.log})") from None
            if line is None:
                raise AssertionError(f"hub exited with {self.proc.wait()} before serving; log {self.log}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            if m := RECOVERED.match(line):
                self.recovered = (int(m[1]), int(m[2]), float(m[3]), int(m[4]))
            if m := SERVING.match(line):
                self.port = int(m[1])
                self.ready_s = time.monotonic() - started
                return

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@dataclass
class Acked:
    participant: str
    client_order_id: str
    order_id: int
    sequence: int


@dataclass
class Load:
    """Client threads sending orders until told to stop or until the hub goes away."""

    target: str
    tag: str
    seed: int
    acked: list[Acked] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    sent: Counter = field(default_factory=Counter)
    quoted: list[int] = field(default_factory=list)  # order ids of acknowledged quote sides

    def _record(self, participant: str, cid: str, ack) -> None:
        if ack.order_id:  # sequenced by an engine (accepted, or rejected by it): acknowledged after commit
            self.acked.append(Acked(participant, cid, ack.order_id, ack.sequence))

    def _unary(self, participant: str, symbols: list[tuple[str, int]], n: int) -> None:
        rng = random.Random(self.seed * 31 + n)
        client = HubClient(self.target, f"dev-{participant}", timeout=10, client_order_id_prefix=f"{self.tag}u{n}-")
        try:
            while not self.stop.is_set():
                symbol, ref = rng.choice(symbols)
                cid = client.next_client_order_id()
                try:
                    ack = client.submit(symbol, rng.choice(("buy", "sell")), rng.randint(1, 9),
                                        ref + rng.randint(-4, 4) * TICK, client_order_id=cid,
                                        time_in_force=rng.choice(("gtc", "day", "ioc")))
                    self.sent[participant] += 1
                    self._record(participant, cid, ack)
                    if ack.accepted and rng.random() < 0.2:
                        client.cancel(symbol, ack.order_id)
                except grpc.RpcError:
                    return  # the hub is gone
        finally:
            client.channel.close()

    def _session(self, participant: str, symbol: str, ref: int, n: int) -> None:
        rng = random.Random(self.seed * 37 + n)
        client = HubClient(self.target, f"dev-{participant}", timeout=10, client_order_id_prefix=f"{self.tag}s{n}-")
        try:
            session = client.open_session(cancel_on_disconnect=True, timeout=10)
            while not self.stop.is_set():
                cid = client.next_client_order_id()
                ack = session.submit(symbol, rng.choice(("buy", "sell")), rng.randint(1, 9),
                                     ref + rng.randint(-4, 4) * TICK, client_order_id=cid,
                                     time_in_force=rng.choice(("gtc", "day")))
                self.sent[participant] += 1
                self._record(participant, cid, ack)
        except Exception:  # noqa: BLE001 - any end of the stream (RpcError, closed session, timeout) ends the load
            return
        finally:
            client.channel.close()

    def _quotes(self, n: int) -> None:
        """A market maker replacing a ladder of ``QUOTE_LEVELS`` quotes on ESZ6 each message: one
        entry block in the ledger per message (``ledger.entries``)."""
        rng = random.Random(self.seed * 41 + n)
        client = HubClient(self.target, "dev-mm-1", timeout=10)
        try:
            while not self.stop.is_set():
                shift = rng.randint(0, 3) * 25
                ladder = [("ESZ6", 6000_00 - 25 * (k + 2) - shift, 1, 6000_00 + 25 * (k + 2) + shift, 1)
                          for k in range(QUOTE_LEVELS)]
                try:
                    ack = client.mass_quote(ladder)
                except grpc.RpcError:
                    return  # the hub is gone
                self.sent["mm-1"] += 1
                self.quoted += [q.bid_order_id for q in ack.quotes if q.bid_order_id]
                self.quoted += [q.ask_order_id for q in ack.quotes if q.ask_order_id]
        finally:
            client.channel.close()

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self._quotes, args=(5,), daemon=True),
            threading.Thread(target=self._unary, args=("inst-1", [("AAPL", P), ("MSFT", M)], 1), daemon=True),
            threading.Thread(target=self._unary, args=("inst-2", [("AAPL", P)], 2), daemon=True),
            threading.Thread(target=self._session, args=("scalper-1", "AAPL", P, 3), daemon=True),
            threading.Thread(target=self._session, args=("scalper-2", "MSFT", M, 4), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a client thread hung after the hub went away"


def engine_replay(db: LedgerDB) -> tuple[dict[int, bytes], int]:
    """Replayed by this test alone: fresh engines fed every command of the ledger in order, every
    produced event compared byte for byte with the recorded ones. Returns each engine's digest and
    the last sequence number."""
    engines = {ac: create_engine(ac, insts) for ac, insts in sorted(by_asset_class(DEFAULT_INSTRUMENTS).items())}
    produced, recorded, at = b"", [], -1
    last_seq = 0

    def settle() -> None:
        assert produced == b"".join(recorded), f"record {at}: replay produced other events than the ledger holds"

    for idx, _, _, payload, _, _ in db.records():
        for rec in decode_all(payload):  # an entry block: the commands and events it stands for
            last_seq = rec.seq
            if rec.record_type == RecordType.EVENT:
                recorded.append(rec.engine_record)
                continue
            if rec.record_type == RecordType.POST_TRADE:
                continue  # the fees of the command's trades: checked by recovery, not by this engine replay
            settle()
            at, recorded, produced = idx, [], b""
            if rec.record_type == RecordType.COMMAND:
                produced = engines[AssetClass(rec.asset_class)].process_packed(rec.engine_record)
    settle()
    return {int(ac): engine.digest() for ac, engine in engines.items()}, last_seq


def hub_replay(db: LedgerDB) -> bytes:
    """The whole hub state digest (engines and fees) of the ledger, rebuilt by a fresh in-memory hub
    that never saw the running one (recover() also proves it at the last checkpoint)."""
    hub = Hub(HubConfig.default())
    hub.cancel_orphaned_sessions = lambda: 0  # the state the ledger ends with, not the next start's
    recover(hub, db.store())
    return hub.state_digest_bytes()


def _pg_config(db: LedgerDB, path: Path) -> list[str]:
    """A config file for ``hub serve``: the development participants, the ledger in the test's schema."""
    lines = ["[ledger]", f'url = "{db.cli_url}"', ""]
    for p in DEV_PARTICIPANTS:
        lines += ["[[participant]]", f'id = "{p.id}"', f'role = "{p.role.value}"',
                  f'class = "{p.participant_class.value}"', f'token_sha256 = "{p.token_sha256}"',
                  f"accounts = {list(p.accounts)}", f'stp_mode = "{StpMode(p.stp_mode).name.lower()}"', ""]
    path.write_text("\n".join(lines))
    return ["--config", str(path)]


def _check_ledger(db: LedgerDB, acked: list[Acked], quoted: list[int]) -> None:
    report = db.verify()
    assert report.ok, report.failure
    found = new_orders_in(db)
    by_client_id = Counter((participant, cid) for _, participant, cid in found)
    by_order_id = {order_id: (participant, cid) for order_id, participant, cid in found}
    assert len(by_order_id) == len(found), "an order id was entered twice"
    for a in acked:
        assert by_client_id[(a.participant, a.client_order_id)] == 1, f"acknowledged {a} is not in the ledger once"
        assert by_order_id.get(a.order_id) == (a.participant, a.client_order_id), f"acknowledged {a} differs"
    for order_id in quoted:
        assert by_order_id.get(order_id) == ("mm-1", ""), f"acknowledged quote side {order_id} is not in the ledger"
    assert_seq_gap_free(db.records())
    assert any(r[2] == RecordType.ENTRY_BLOCK for r in db.records()), "no mass quote was recorded as a block"


@pytest.mark.parametrize("kills", [pytest.param(3, id="3-kills"),
                                   pytest.param(12, id="12-kills", marks=pytest.mark.slow)])
def test_sigkilled_hub_loses_no_acknowledged_order_and_recovers_the_ledger_state(
        ledger_db: LedgerDB, tmp_path: Path, kills: int) -> None:
    rng = random.Random(SEED + kills)
    extra = _pg_config(ledger_db, tmp_path / "hub.toml") if ledger_db.is_pg else []
    hub = HubProcess(ledger_db.data_dir, extra, tmp_path / "hub.log")
    hub.start()
    acked: list[Acked] = []
    quoted: list[int] = []
    timings = []
    pending_seen = 0
    print(f"\ncrash drill [{ledger_db.kind}] seed {SEED}: {kills} kills")
    for round_ in range(kills):
        resumed_after = hub.recovered[3] if hub.recovered else 0
        load = Load(hub.target, f"r{round_}", rng.randrange(2**32))
        load.start()
        delay = rng.uniform(0.2, 0.9)
        time.sleep(delay)
        hub.kill()
        load.join()
        assert load.acked, "no order was acknowledged before the kill: the drill tested nothing"
        assert all(a.sequence > resumed_after for a in load.acked), "a sequence number was reused after a restart"
        acked += load.acked
        quoted += load.quoted
        # The ledger on disk: the database, and on SQLite the ack log's batches not inserted yet (acked,
        # then killed before the applier ran), which the restarted hub inserts before anything else.
        size = len(ledger_db.records())
        pending = 0 if ledger_db.is_pg else pending_records(ack_log_path(ledger_db.engine()), size)
        size += pending
        if not pending:
            _check_ledger(ledger_db, acked, quoted)

        hub.start()
        records, _, seconds, last_seq = hub.recovered
        assert records == size, "recovery must replay exactly the records that were committed"
        if pending:
            _check_ledger(ledger_db, acked, quoted)
            pending_seen += 1
        # the hub is idle now: the ledger holds everything it did, recovery's own records included
        # (on SQLite its newest records reach the database from the ack log a moment after their ack)
        with HubClient(hub.target, "dev-operator", timeout=10) as operator:
            status = operator.status()
        wait_for(lambda target=status.last_sequence: max((row[1] for row in ledger_db.records()), default=0) >= target,
                 what="the ack log's applier")
        engine_digests, ledger_last_seq = engine_replay(ledger_db)
        assert ledger_last_seq >= last_seq
        assert status.last_sequence == ledger_last_seq
        assert {e.asset_class: e.state_digest for e in status.engines} == {
            ac: d.hex() for ac, d in engine_digests.items()}, "the restarted hub's books differ from the ledger's"
        wait_for(lambda: ledger_db.store().last_checkpoint().tree_size == len(ledger_db.records()),
                 what="recovery's checkpoint")
        assert ledger_db.store().last_checkpoint().state_digest == hub_replay(ledger_db), (
            "the digest the restarted hub signed differs from the state rebuilt from the ledger")
        timings.append((delay, size, seconds, hub.ready_s))
        print(f"  kill {round_ + 1} after {delay:.2f}s of load: {len(load.acked)} acks ({pending} records only in "
              f"the ack log); {size} records recovered "
              f"in {seconds:.2f}s ({size / max(seconds, 1e-9):,.0f} records/s), serving {hub.ready_s:.2f}s "
              f"after the restart")

    final = Load(hub.target, "final", rng.randrange(2**32))
    final.start()
    time.sleep(0.2)
    final.join()
    acked += final.acked
    quoted += final.quoted
    assert hub.stop() == 0
    _check_ledger(ledger_db, acked, quoted)
    report = ledger_db.verify()
    assert not report.warnings, "a clean stop closes the last block"
    engine_replay(ledger_db)
    assert ledger_db.store().last_checkpoint().state_digest == hub_replay(ledger_db)
    print(f"  {len(acked)} acknowledged orders and {len(quoted)} quote sides, {report.records} records, "
          f"{report.checkpoints} checkpoints; "
          f"recovery took {max(t[2] for t in timings):.2f}s at most")
