"""Ledger tables, append-only triggers, and database connections (SQLite default, PostgreSQL by URL).

Tables: ``ledger_record`` (one Merkle leaf per row, with its hash-chain link), ``ledger_node``
(perfect-subtree hashes, so proofs are indexed reads), ``ledger_checkpoint`` (signed tree heads
with the engines' state digest) and ``ledger_meta``. The database itself refuses UPDATE, DELETE
(and on PostgreSQL TRUNCATE) on all of them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from sqlalchemy import BigInteger, LargeBinary, SmallInteger, String, Text, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: 2: on SQLite ``ledger_record.idx`` is the rowid itself (INTEGER PRIMARY KEY) and ``ledger_node``
#: is a WITHOUT ROWID table keyed by (level, node_index): a record is two b-tree inserts (table,
#: seq index) instead of three and a node one instead of two. Columns, types as read back and
#: meaning are those of 1, and PostgreSQL's tables are the same in both, so a ledger written as 1
#: is read and appended to as it is: nothing needs migrating.
#: 3: ``ledger_node`` keeps the perfect subtrees of level ``NODE_FLOOR`` and up only; a node below
#: it is computed from the at most 2**(NODE_FLOOR - 1) leaf hashes it covers (one range read of
#: ``ledger_record``). Tables are those of 2. Storing every level put about one node insert beside
#: each record insert on every commit (a third of the database work of an append); from level 4 it
#: is one node per 16 records, and a proof still reads O(log n) rows. New ledgers also have no index
#: on ``ledger_record.seq``, which nothing read.
SCHEMA_VERSION = "3"
COMPATIBLE_SCHEMA_VERSIONS = frozenset({"1", "2", "3"})
NODE_FLOOR = 4


def node_floor(schema_version: str | None) -> int:
    """Lowest tree level a ledger of this schema version stores in ``ledger_node`` (no recorded
    version reads as 1, the first)."""
    return NODE_FLOOR if schema_version is not None and schema_version.isdigit() and int(schema_version) >= 3 else 1

SQLITE_FILE = "ledger.sqlite3"

Seq = Annotated[int, mapped_column(BigInteger)]
Sha256 = Annotated[bytes, mapped_column(LargeBinary(32))]


class Durability(StrEnum):
    PROCESS = "process"  # a commit survives the hub process dying (no fsync per block)
    POWER = "power"  # a commit survives power loss (fsync per block)


class Base(DeclarativeBase):
    pass


class LedgerRecord(Base):
    __tablename__ = "ledger_record"
    # leaf index; on SQLite the rowid itself (INTEGER PRIMARY KEY), so rows are stored in leaf order
    idx: Mapped[int] = mapped_column(BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                                     autoincrement=False)
    # No index on seq from schema 3: nothing looks records up by it (readers go by idx or read all), and
    # it was a second b-tree insert per record. Ledgers created earlier keep theirs.
    seq: Mapped[Seq]
    record_type: Mapped[int] = mapped_column(SmallInteger)
    hub_time_ns: Mapped[Seq]
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # canonical bytes (ledger.records)
    leaf_hash: Mapped[Sha256]  # SHA-256(0x00 || payload)
    chain_hash: Mapped[Sha256]  # SHA-256(tag || previous chain || leaf hash)


class LedgerNode(Base):
    __tablename__ = "ledger_node"
    __table_args__ = {"sqlite_with_rowid": False}  # the primary key is the only b-tree
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[Sha256]


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoint"
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root_hash: Mapped[Sha256]
    state_digest: Mapped[Sha256]
    hub_time_ns: Mapped[Seq]
    last_seq: Mapped[Seq]
    note: Mapped[str] = mapped_column(Text)  # C2SP signed note: body + signature lines


class LedgerMeta(Base):
    __tablename__ = "ledger_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


TABLES = [m.__tablename__ for m in (LedgerRecord, LedgerNode, LedgerCheckpoint, LedgerMeta)]


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on {table} refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on {table} refused'); END",
    ]


# No percent signs in this statement: it goes through the driver (exec_driver_sql), and psycopg would
# take RAISE's '%' placeholders for its own parameter markers.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'ledger is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' refused';
END;
$$ LANGUAGE plpgsql
"""


def _pg_triggers(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()",
    ]


def sqlite_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / SQLITE_FILE}"


def connect(url: str, durability: Durability = Durability.PROCESS, *, schema: str | None = None) -> Engine:
    """An engine for the ledger database with the durability the hub was configured for.

    ``schema`` (PostgreSQL only) puts the ledger tables in that schema (``search_path``); ``-c``
    options already in the URL's ``options`` query parameter are kept, not replaced."""
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        raise ValueError(f"ledger schema name {schema!r} is not a plain SQL identifier")
    if url.startswith("sqlite"):
        if schema is not None:
            raise ValueError("a ledger schema can only be given for PostgreSQL")
        # LIFO pool: consecutive commits reuse the same connection and its page cache (a FIFO pool
        # rotates through connections whose caches the others' commits made stale).
        engine = sa.create_engine(url, pool_use_lifo=True,
                                  connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30})
        synchronous = "FULL" if durability == Durability.POWER else "NORMAL"

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI hook signature
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            # No checkpoint inside a commit: an automatic one copies the whole WAL (4 MB) into the
            # database on whichever commit crosses the threshold, stalling that ack by ~5 ms. The
            # journal's writer thread checkpoints in the background instead (LedgerJournal).
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        # pysqlite's own transaction handling is off (isolation_level None); emit BEGIN ourselves
        # so SQLAlchemy's transactions are real SQLite transactions.
        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN")

        return engine
    commit_mode = "on" if durability == Durability.POWER else "off"
    given = sa.engine.make_url(url).query.get("options", ())
    options = [given] if isinstance(given, str) else list(given)
    options.append(f"-c synchronous_commit={commit_mode}")
    if schema is not None:
        options.append(f"-c search_path={schema}")
    return sa.create_engine(url, pool_pre_ping=True, pool_use_lifo=True, connect_args={"options": " ".join(options)})


def create_schema(engine: Engine) -> str:
    """Create (or confirm) the tables and the append-only triggers; idempotent. Returns the ledger's
    schema version (``SCHEMA_VERSION`` for a new one)."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for table in TABLES:
                for stmt in _sqlite_triggers(table):
                    conn.exec_driver_sql(stmt)
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_FUNCTION)
            for table in TABLES:
                for stmt in _pg_triggers(table):
                    conn.exec_driver_sql(stmt)
        else:
            raise ValueError(f"unsupported ledger database {engine.dialect.name!r}")
        found = conn.execute(sa.select(LedgerMeta.value).where(LedgerMeta.key == "schema_version")).scalar()
        if found is None:
            conn.execute(sa.insert(LedgerMeta).values(key="schema_version", value=SCHEMA_VERSION))
            return SCHEMA_VERSION
        if found not in COMPATIBLE_SCHEMA_VERSIONS:
            raise RuntimeError(f"ledger schema version {found} is not one of {sorted(COMPATIBLE_SCHEMA_VERSIONS)}; "
                               "no migration known")
        return found


def stored_schema_version(conn: sa.Connection) -> str | None:
    """The ledger's recorded schema version, None if it records none (or has no meta table)."""
    if not sa.inspect(conn).has_table(LedgerMeta.__tablename__):
        return None
    return conn.execute(sa.select(LedgerMeta.value).where(LedgerMeta.key == "schema_version")).scalar()
