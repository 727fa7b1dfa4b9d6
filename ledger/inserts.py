"""Inserting hashed ledger batches into the database: one transaction per batch, on a DBAPI
connection kept between batches. Used by the journal's own writers (``ledger.store``) and by the
ack log's apply worker process (``ledger.apply_worker``)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# Rows per multi-row INSERT: one statement execution per this many rows instead of one per row.
_ROWS_PER_INSERT = 128


def _multi(single: str, rows: int = _ROWS_PER_INSERT) -> str:
    """``INSERT ... VALUES (...)`` for ``rows`` rows at once."""
    head, _, values = single.partition(" VALUES ")
    return f"{head} VALUES {', '.join([values] * rows)}"


class BatchInserter:
    """Inserts (records, tree nodes, checkpoints) rows of hashed batches; not thread-safe (its
    callers take turns: the journal's write lock, or the apply worker's one thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn = None  # a pooled connection, kept between commits
        sql = self._sql
        self._insert_records = sql("INSERT INTO ledger_record (idx, seq, record_type, hub_time_ns, payload, "
                                   "leaf_hash, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
        self._insert_nodes = sql("INSERT INTO ledger_node (level, node_index, hash) VALUES (?, ?, ?)")
        self._explicit_begin = engine.dialect.name == "sqlite"  # pysqlite runs in autocommit (see schema)
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        self._insert_records_multi = _multi(self._insert_records)
        self._records_sql_by_count: dict[int, str] = {}
        self._insert_nodes_multi = _multi(self._insert_nodes)
        self._insert_checkpoint = sql("INSERT INTO ledger_checkpoint (tree_size, root_hash, state_digest, "
                                      "hub_time_ns, last_seq, note) VALUES (?, ?, ?, ?, ?, ?)")

    def _sql(self, qmark: str) -> str:
        return qmark if self.engine.dialect.paramstyle == "qmark" else qmark.replace("?", "%s")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def commit(self, rows: list[tuple], nodes: list[tuple], checkpoints: list[tuple]) -> None:
        """One transaction on a pooled connection, driven through its DBAPI cursor: SQLAlchemy's own
        transaction and statement machinery costs more than the inserts of a small batch, and every
        commit is on an acknowledgement's path. The connection is kept for the next batch (a pool
        checkout and its reset on return cost tens of microseconds); a failed one is given back, and
        one the database dropped is invalidated. Driver errors are raised as SQLAlchemy's
        DBAPIError, like any other database failure."""
        raw = self._conn if self._conn is not None else self.engine.raw_connection()
        self._conn = None
        cursor = None
        statement = "BEGIN"
        committed = False
        try:
            cursor = raw.cursor()
            if self._explicit_begin and not nodes and not checkpoints and 0 < len(rows) <= _ROWS_PER_INSERT:
                # The usual small batch: one multi-row INSERT, atomic as SQLite's own transaction.
                # Each call into SQLite lets go of the GIL and must win it back, behind whatever
                # thread took it meanwhile (the session thread sequencing the next order): one call
                # here instead of BEGIN, a step per row and COMMIT.
                statement = self._records_sql(len(rows))
                cursor.execute(statement, tuple(itertools.chain.from_iterable(rows)))
                committed = True
                return
            if self._explicit_begin:
                cursor.execute("BEGIN")
            for statement, params in self._statements(rows, nodes, checkpoints):
                cursor.executemany(statement, params)
            statement = "COMMIT"
            if self._explicit_begin:
                cursor.execute("COMMIT")
            else:
                raw.commit()
            committed = True
        except self._dbapi_error as exc:
            with contextlib.suppress(Exception):
                raw.rollback()
            lost = self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
            if lost:
                raw.invalidate()
            raise sa.exc.DBAPIError.instance(statement, None, exc, self._dbapi_error, hide_parameters=True,
                                             connection_invalidated=lost, dialect=self.engine.dialect) from exc
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()
            if committed:
                self._conn = raw
            else:
                raw.close()

    def _records_sql(self, count: int) -> str:
        """``INSERT INTO ledger_record ... VALUES`` for ``count`` rows (built once per count)."""
        sql = self._records_sql_by_count.get(count)
        if sql is None:
            sql = self._records_sql_by_count[count] = _multi(self._insert_records, count)
        return sql

    def _statements(self, rows: list[tuple], nodes: list[tuple], checkpoints: list[tuple]) -> Iterator[tuple[str, list]]:
        """(statement, parameter sets) inserting the rows in order: whole groups of rows through the
        multi-row INSERT, the rest one row per parameter set."""
        flat = itertools.chain.from_iterable
        n = _ROWS_PER_INSERT
        for single, multi, table in ((self._insert_records, self._insert_records_multi, rows),
                                     (self._insert_nodes, self._insert_nodes_multi, nodes)):
            whole = len(table) - len(table) % n
            if whole:
                yield multi, [tuple(flat(table[i:i + n])) for i in range(0, whole, n)]
            if whole < len(table):
                yield single, table[whole:]
        if checkpoints:
            yield self._insert_checkpoint, checkpoints
