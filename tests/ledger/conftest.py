"""Fixtures of the ledger tier: a ledger database per test (SQLite, and PostgreSQL when
$HUB_TEST_POSTGRES_URL is set, each test in a fresh schema), hubs writing to it, a mixed workload,
and the raw-SQL access an attacker (or an operator simulating a failure) would have.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import Hub, OrderSpec, QuoteSpec
from hub.recovery import RecoveryReport, recover
from hub.v1 import common_pb2 as cpb
from ledger.entries import BLOCK_MIN_COMMANDS, decode_all
from ledger.records import RecordType, record_end_seq
from ledger.schema import TABLES, Durability, connect, sqlite_url
from ledger.signing import ED25519_PUB_FILE, Signer, Verifier, load_or_create_signer, load_verifier
from ledger.store import LedgerJournal, LedgerStore
from ledger.verify import VerifyReport, verify_ledger
from matching.types import NewOrder, decode_commands

PG_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "")
PG_SKIP = ("PostgreSQL ledger tests need $HUB_TEST_POSTGRES_URL "
           "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); it is not set")
ORIGIN = "hub.local/ledger/v1"
KEY_NAME = "hub.local"
P = 190_0000  # AAPL reference price (tick 100)
TICK = 100
M = 420_0000  # MSFT reference price
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def identities(config: HubConfig | None = None) -> dict[str, Identity]:
    return {p.id: Identity.of(p) for p in (config or HubConfig.default()).participants}


@dataclass
class LedgerDB:
    """One ledger database: where it is, how to open it, and raw SQL on it."""

    kind: str  # "sqlite" or "postgres"
    data_dir: Path
    url: str
    schema: str | None = None
    _engines: list[Engine] = field(default_factory=list)

    @property
    def is_pg(self) -> bool:
        return self.kind == "postgres"

    @property
    def cli_url(self) -> str:
        """The URL the CLI (``--url``) and ``[ledger] url`` take: the schema rides in ``options``."""
        if not self.is_pg:
            return ""
        return f"{self.url}{'&' if '?' in self.url else '?'}options={quote(f'-csearch_path={self.schema}')}"

    def engine(self, durability: Durability = Durability.PROCESS) -> Engine:
        engine = connect(self.url, durability, schema=self.schema)
        self._engines.append(engine)
        return engine

    @property
    def signer(self) -> Signer:
        return load_or_create_signer(self.data_dir, KEY_NAME)

    @property
    def verifier(self) -> Verifier:
        """The pinned key, read from the exported public key file only."""
        return load_verifier(self.data_dir / ED25519_PUB_FILE)

    def journal(self, *, checkpoint_every: int = 40, checkpoint_interval_s: float = 3600.0,
                commit_timeout_s: float = 5.0, engine: Engine | None = None) -> LedgerJournal:
        """A journal that checkpoints every ``checkpoint_every`` entries (never on time, by default,
        so where checkpoints fall depends on the workload alone)."""
        return LedgerJournal(engine or self.engine(), self.signer, ORIGIN, checkpoint_every=checkpoint_every,
                             checkpoint_interval_s=checkpoint_interval_s, commit_timeout_s=commit_timeout_s)

    def verify(self, anchors: list[str] | None = None) -> VerifyReport:
        engine = self.engine()
        try:
            return verify_ledger(engine, self.verifier, anchors)
        finally:
            engine.dispose()

    def store(self) -> LedgerStore:
        return LedgerStore(self.engine())

    # -- raw SQL (named :params, portable between the two databases)

    def execute(self, sql: str, params: dict | list[dict] | None = None) -> None:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql), params or {})
        finally:
            engine.dispose()

    def query(self, sql: str, params: dict | None = None) -> list:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params or {}).all()
        finally:
            engine.dispose()

    def drop_triggers(self) -> None:
        """What an attacker with write access does first: remove the append-only guards."""
        if self.is_pg:
            stmts = [f"DROP TRIGGER {t}_{kind} ON {t}" for t in TABLES for kind in ("append_only", "no_truncate")]
        else:
            stmts = [f"DROP TRIGGER {t}_{kind}" for t in TABLES for kind in ("no_update", "no_delete")]
        engine = self.engine()
        try:
            with engine.begin() as conn:
                for stmt in stmts:
                    conn.exec_driver_sql(stmt)
        finally:
            engine.dispose()

    def records(self) -> list:
        """(idx, seq, record_type, payload, leaf_hash, chain_hash) rows in index order."""
        return [(r.idx, r.seq, r.record_type, bytes(r.payload), bytes(r.leaf_hash), bytes(r.chain_hash))
                for r in self.query("SELECT idx, seq, record_type, payload, leaf_hash, chain_hash "
                                    "FROM ledger_record ORDER BY idx")]

    def close(self) -> None:
        while self._engines:
            self._engines.pop().dispose()


def _pg_admin() -> Engine:
    return connect(PG_URL)


@pytest.fixture(params=BACKENDS)
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerDB]:
    """A fresh, empty ledger database of each kind (PostgreSQL: its own schema, dropped afterwards)."""
    data_dir = tmp_path / "hub-data"
    data_dir.mkdir()
    if request.param == "sqlite":
        db = LedgerDB("sqlite", data_dir, sqlite_url(data_dir))
        yield db
        db.close()
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    db = LedgerDB("postgres", data_dir, PG_URL, schema)
    try:
        yield db
    finally:
        db.close()
        with admin.begin() as conn:  # the triggers refuse DELETE / TRUNCATE; DROP is what clears them
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


# -- hubs on a ledger -----------------------------------------------------------------------------


def start_hub(journal: LedgerJournal, config: HubConfig | None = None) -> Hub:
    """What ``run_server`` does before SERVING, without the network: replay, then accept."""
    hub = Hub(config or HubConfig.default(), journal)
    hub.accepting = False
    hub.recovery = recover(hub, journal)
    hub.accepting = True
    return hub


def stop_hub(hub: Hub) -> None:
    """A clean stop, as ``run_server`` does it: refuse, close the last block, close the ledger."""
    hub.accepting = False
    hub.journal.checkpoint(hub.state_digest_bytes(), hub.clock())
    hub.journal.close()


def recovery_of(hub: Hub) -> RecoveryReport:
    assert hub.recovery is not None
    return hub.recovery


def order(symbol: str, side: int, price: int, quantity: int, tif: int = cpb.GTC, cid: str = "") -> OrderSpec:
    return OrderSpec(symbol, side, cpb.LIMIT, tif, price, quantity, client_order_id=cid)


def drive_mixed(hub: Hub, rounds: int, seed: int = 7) -> dict[str, int]:
    """Every kind of ledger record: orders and trades on several engines, cancels, replaces, mass
    quotes, mass cancels, halts and resumes, gateway rejects, sessions (with cancel-on-disconnect)
    and end of session. Returns counts of what was done."""
    rng = random.Random(seed)
    who = identities(hub.config)
    done = {"orders": 0, "trades": 0, "cancels": 0, "quotes": 0, "rejects": 0, "halts": 0, "sessions": 0}
    tag = uuid.uuid4().hex[:6]
    for i in range(rounds):
        px = P + rng.randint(-3, 3) * TICK
        resting, _, _ = hub.submit_order(who["scalper-1"], order("AAPL", cpb.SELL, px, 10, cid=f"{tag}-s{i}"))
        taker, _, _ = hub.submit_order(who["inst-1"], order("AAPL", cpb.BUY, px, 4, cid=f"{tag}-b{i}"))
        done["orders"] += 2
        done["trades"] += sum(1 for r in taker.reports if r.exec_type == cpb.EXEC_TRADE)
        if i % 2 == 0:
            hub.cancel_order(who["scalper-1"], "AAPL", resting.seq_first)
            done["cancels"] += 1
        else:
            hub.replace_order(who["scalper-1"], "AAPL", resting.seq_first, px + TICK, 5)
        hub.submit_order(who["scalper-2"], order("MSFT", cpb.BUY, M - (i % 4) * TICK, 3, cpb.DAY, f"{tag}-m{i}"))
        hub.submit_order(who["inst-1"], order("EURUSD", cpb.SELL, 1_08500 + i % 3, 2_000, cid=f"{tag}-e{i}"))
        done["orders"] += 2
        if i % 3 == 0:
            hub.mass_quote(who["mm-1"], [QuoteSpec("ESZ6", 6000_00 - 25, 2, 6000_00 + 25, 2),
                                         QuoteSpec("BTC-USD", 95_000_00 - 1, 10_000, 95_000_00 + 1, 10_000)], 0)
            done["quotes"] += 1
        if i % 4 == 1:  # a market maker's ladder: one entry block (ledger.entries) of 32 or more commands
            hub.mass_quote(who["mm-1"], [QuoteSpec("ESZ6", 6000_00 - 25 * (k + 2), 1, 6000_00 + 25 * (k + 2), 1)
                                         for k in range(BLOCK_MIN_COMMANDS // 2)], 0)
            done["quotes"] += 1
        if i % 5 == 1:
            hub.set_halted(who["operator"], "GCZ6", 0, True)
            refused, reason, _ = hub.submit_order(who["scalper-2"], order("GCZ6", cpb.BUY, 2650_00, 1))
            assert refused is None and reason, "an order on a halted instrument must be refused at the gateway"
            hub.set_halted(who["operator"], "GCZ6", 0, False)
            done["halts"] += 1
            done["rejects"] += 1
        if i % 7 == 2:
            dup, reason, _ = hub.submit_order(who["scalper-1"], order("AAPL", cpb.BUY, P - 9 * TICK, 1,
                                                                     cid=f"{tag}-s{i}"))
            assert dup is None and reason, "a duplicate client_order_id must be refused at the gateway"
            done["rejects"] += 1
        if i % 6 == 3:
            session = hub.open_session(who["scalper-2"], cancel_on_disconnect=True)
            hub.submit_order(who["scalper-2"], order("MSFT", cpb.SELL, M + 10 * TICK, 1, cpb.DAY, f"{tag}-d{i}"),
                             session.session_id)
            hub.close_session(who["scalper-2"], session)
            done["sessions"] += 1
        if i % 9 == 4:
            hub.mass_cancel(who["scalper-2"], "MSFT", 0)
            hub.end_of_session(who["operator"], "GCZ6", 0)
    return done


def build_ledger(db: LedgerDB, rounds: int = 30, checkpoint_every: int = 40) -> dict:
    """A closed ledger of a few hundred records and several checkpoints, written by a real hub.
    Returns what the hub looked like when it stopped."""
    journal = db.journal(checkpoint_every=checkpoint_every)
    hub = start_hub(journal)
    drive_mixed(hub, rounds)
    state = {"digest": hub.state_digest_bytes(), "last_seq": hub.last_sequence}
    stop_hub(hub)
    return state


# -- reading the ledger back ----------------------------------------------------------------------


def new_orders_in(db: LedgerDB) -> list[tuple[int, str, str]]:
    """(order id, participant, client_order_id) of every NewOrder command in the ledger."""
    found = []
    for _, _, rtype, payload, _, _ in db.records():
        if rtype not in (RecordType.COMMAND, RecordType.ENTRY_BLOCK):
            continue
        for rec in decode_all(payload):
            if rec.record_type != RecordType.COMMAND:
                continue
            (cmd,) = decode_commands(rec.engine_record)
            if type(cmd) is NewOrder:
                found.append((cmd.order_id, rec.participant, rec.client_order_id))
    return found


def assert_seq_gap_free(rows: list) -> None:
    """Commands, rejects, admin and config records take the next sequence number; events and the
    fee record of a command's trades repeat it; an entry block takes one for each of its commands."""
    prev = 0
    for idx, seq, rtype, payload, *_ in rows:
        wanted = prev if rtype in (RecordType.EVENT, RecordType.POST_TRADE) else prev + 1
        assert seq == wanted, f"record {idx}: sequence {seq} where {wanted} was due"
        prev = record_end_seq(payload)  # an entry block carries its commands' sequence numbers


def assert_complete_ledger(db: LedgerDB, records: int) -> None:
    """The ledger holds exactly ``records`` records, sequence numbers without a gap, and verifies."""
    assert_seq_gap_free(db.records())
    report = db.verify()
    assert report.ok and report.records == records, report.failure


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
