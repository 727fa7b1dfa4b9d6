"""The sequencer's journal: every sequenced command and what it caused, in sequence order.

The gateway acknowledges nothing before ``wait_committed`` returns for its entry. This module
defines the interface and an in-memory journal (committed on append); the durable ledger
implements the same interface with group commit.
"""

from __future__ import annotations

import contextlib
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class EntryKind(StrEnum):
    ENGINE = "engine"  # engine commands and the events they produced
    GATEWAY_REJECT = "gateway_reject"  # refused before reaching an engine
    ADMIN = "admin"  # halts, resumes, sessions and other hub-level state changes
    CONFIG = "config"  # instruments and participants in force


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq_first: int
    seq_last: int
    ts: int  # hub time, ns UTC
    kind: EntryKind
    source: str  # participant id (and session) that caused it
    asset_class: int  # engine the commands went to, 0 for none
    commands: bytes = b""  # encoded engine commands (matching.types codec)
    events: bytes = b""  # encoded engine events
    detail: bytes = b""  # canonical JSON for gateway rejects and admin actions
    session: str = ""  # the streaming session it came from, if any
    arrival_ns: int = 0  # when the gateway received the request (ts is when it was released)
    client_order_ids: tuple[str, ...] = ()  # per command, "" where none
    quote_flags: tuple[bool, ...] = ()  # per command: entered by a mass quote
    post_trade: tuple[bytes, ...] = ()  # per command: canonical JSON of the fees its trades paid, or b""


class JournalUnavailableError(RuntimeError):
    """The journal cannot record: the hub must refuse new commands rather than ack them."""


class Journal(Protocol):
    def append(self, entry: JournalEntry) -> int:
        """Queue an entry in sequence order; returns a ticket for ``wait_committed``."""
        ...

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        """Block until the entry is committed; raises JournalUnavailableError if it cannot be."""
        ...

    def close(self) -> None: ...

    @property
    def available(self) -> bool:
        """False while the journal cannot record; the hub then refuses new commands."""
        ...

    def checkpoint_due(self) -> bool:
        """True when enough has been appended since the last checkpoint to close a block."""
        ...

    def checkpoint(self, state_digest: bytes, ts: int) -> None:
        """Close a block after everything appended so far, committing to this state digest."""
        ...

    def urgent(self) -> AbstractContextManager[None]:
        """While held, the journal defers its background work (nothing on an ack's path) so that a
        time-critical sequenced step (a kill's cancels) has the CPU and the GIL to itself."""
        ...


class InMemoryJournal:
    """Committed on append; keeps entries for replay and tests. Survives nothing."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: JournalEntry) -> int:
        with self._lock:
            if self._entries and entry.seq_first <= self._entries[-1].seq_last:
                raise ValueError("journal entries must arrive in sequence order")
            self._entries.append(entry)
            return len(self._entries)

    def wait_committed(self, ticket: int, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    available = True

    def checkpoint_due(self) -> bool:
        return False

    def checkpoint(self, state_digest: bytes, ts: int) -> None:
        return None

    def urgent(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def entries(self) -> list[JournalEntry]:
        with self._lock:
            return list(self._entries)
