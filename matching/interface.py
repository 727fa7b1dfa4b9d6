"""The one interface both engines implement; callers never need to know which one they hold."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from matching.types import AssetClass, Command, Depth, Event, OrderView


@runtime_checkable
class MatchingEngine(Protocol):
    """Books of one asset class. Single writer: call from one thread only.

    ``process`` takes one typed command and returns its typed events; ``process_packed`` takes
    any number of encoded commands (see ``matching.types``) and returns their encoded events
    in one buffer, which is the fast path for the sequencer and for replay.
    """

    implementation: str
    #: True when ``cancel_all_columns`` runs without the GIL, so that engines of different asset
    #: classes can be emptied in parallel threads.
    releases_gil: bool
    asset_class: AssetClass
    last_order_id: int
    last_trade_id: int
    last_seq: int

    @property
    def instrument_ids(self) -> list[int]: ...

    @property
    def resting_count(self) -> int:
        """Orders resting in the engine's books."""
        ...

    def process(self, command: Command) -> list[Event]: ...

    def process_packed(self, commands: bytes) -> bytes: ...

    def cancel_orders(self, seq: int, order_ids: bytes) -> bytes:
        """Risk cancels of the listed (packed int64) resting order ids as one step ``seq``; encoded events."""
        ...

    def cancel_orders_columns(self, seq: int, order_ids: bytes) -> tuple[bytes, bytes, bytes, int]:
        """``cancel_orders`` with its events in columns: ``matching.types.split_cancelled`` of them."""
        ...

    def cancel_all_columns(self, seq: int) -> tuple[bytes, bytes, bytes, int]:
        """``cancel_orders_columns`` of every order resting in the engine (a BLOCK kill over it)."""
        ...

    def free_cancelled(self) -> None:
        """Free what ``cancel_all_columns`` left to free later; safe from another thread."""
        ...

    def depth(self, instrument_id: int, levels: int = 0) -> Depth: ...

    def orders(self, instrument_id: int) -> list[OrderView]: ...

    def order(self, instrument_id: int, order_id: int) -> OrderView | None: ...

    def book_digest(self, instrument_id: int) -> bytes: ...

    def digest(self) -> bytes: ...
