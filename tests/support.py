"""Test helpers: numbered command builders, an engine-driving session, event comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

from matching.engine import create_engine
from matching.instruments import DEFAULT_INSTRUMENTS, Instrument, by_asset_class
from matching.interface import MatchingEngine
from matching.types import (
    AssetClass,
    Cancel,
    Command,
    EndOfSession,
    Event,
    MassCancel,
    NewOrder,
    OrderType,
    Replace,
    Side,
    StpMode,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, DAY, IOC, FOK = TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK

# Default equity instruments: AAPL (1) and MSFT (2), tick 100, lot 1, price_scale 4.
AAPL, MSFT = 1, 2
TICK = 100
P = 190_0000  # AAPL reference price
M = 420_0000  # MSFT reference price


def build_engine(
    implementation: str,
    asset_class: AssetClass = AssetClass.EQUITY,
    instruments: tuple[Instrument, ...] | None = None,
) -> MatchingEngine:
    """An engine of ``implementation`` over the default instruments of ``asset_class``."""
    if instruments is None:
        instruments = by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass(asset_class)]
    return create_engine(asset_class, instruments, implementation=implementation)


class Commands:
    """Builds commands with an increasing ``seq`` (every command) and order id (every new order).

    Anything may be overridden per call, including ``order_id`` (for duplicate-id cases); an
    explicit order id does not advance the counter.
    """

    def __init__(self, instrument_id: int = AAPL, first_seq: int = 1, first_order_id: int = 1) -> None:
        self.instrument_id = instrument_id
        self.seq = first_seq - 1
        self.next_order_id = first_order_id

    def _seq(self) -> int:
        self.seq += 1
        return self.seq

    def new(self, side: int, price: int, quantity: int, *, account: int = 1, order_type: int = LIMIT,
            tif: int = GTC, display: int = 0, post_only: int = 0, stp: int = StpMode.NONE,
            instrument_id: int | None = None, order_id: int | None = None, ts: int = 0) -> NewOrder:
        if order_id is None:
            order_id = self.next_order_id
            self.next_order_id += 1
        return NewOrder(self._seq(), ts, self.instrument_id if instrument_id is None else instrument_id,
                        order_id, account, side, order_type, tif, price, quantity, display, post_only, stp)

    def market(self, side: int, quantity: int, *, tif: int = IOC, **kw) -> NewOrder:
        return self.new(side, 0, quantity, order_type=MARKET, tif=tif, **kw)

    def cancel(self, order_id: int, *, account: int = 1, instrument_id: int | None = None) -> Cancel:
        return Cancel(self._seq(), 0, self.instrument_id if instrument_id is None else instrument_id,
                      order_id, account)

    def replace(self, order_id: int, price: int, quantity: int, *, account: int = 1,
                instrument_id: int | None = None) -> Replace:
        return Replace(self._seq(), 0, self.instrument_id if instrument_id is None else instrument_id,
                       order_id, account, price, quantity)

    def mass_cancel(self, account: int, instrument_id: int = 0) -> MassCancel:
        return MassCancel(self._seq(), 0, instrument_id, account)

    def end_of_session(self, instrument_id: int = 0) -> EndOfSession:
        return EndOfSession(self._seq(), 0, instrument_id)


@dataclass
class Sent:
    """One processed command: its seq, its order id (0 if none) and the events it caused."""

    command: Command
    events: list[Event] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return self.command.seq

    @property
    def order_id(self) -> int:
        return getattr(self.command, "order_id", 0)


class Session:
    """Drives one engine through a :class:`Commands` builder; every call returns a :class:`Sent`."""

    def __init__(self, engine: MatchingEngine, instrument_id: int = AAPL) -> None:
        self.engine = engine
        self.cmd = Commands(instrument_id)

    def send(self, command: Command) -> Sent:
        return Sent(command, list(self.engine.process(command)))

    def new(self, side: int, price: int, quantity: int, **kw) -> Sent:
        return self.send(self.cmd.new(side, price, quantity, **kw))

    def buy(self, price: int, quantity: int, **kw) -> Sent:
        return self.new(BUY, price, quantity, **kw)

    def sell(self, price: int, quantity: int, **kw) -> Sent:
        return self.new(SELL, price, quantity, **kw)

    def market(self, side: int, quantity: int, **kw) -> Sent:
        return self.send(self.cmd.market(side, quantity, **kw))

    def cancel(self, order_id: int, **kw) -> Sent:
        return self.send(self.cmd.cancel(order_id, **kw))

    def replace(self, order_id: int, price: int, quantity: int, **kw) -> Sent:
        return self.send(self.cmd.replace(order_id, price, quantity, **kw))

    def mass_cancel(self, account: int, instrument_id: int = 0) -> Sent:
        return self.send(self.cmd.mass_cancel(account, instrument_id))

    def end_of_session(self, instrument_id: int = 0) -> Sent:
        return self.send(self.cmd.end_of_session(instrument_id))


def canon(events: list[Event]) -> list[str]:
    """Events as comparable text: the type name and every field as a plain int.

    NamedTuples compare as bare tuples (a Done could equal another 4-field event), and the
    reference engine emits enum members where the compiled one emits ints; this removes both.
    """
    return [repr(type(e)._make(int(x) for x in e)) for e in events]


def assert_events(actual: list[Event], expected: list[Event]) -> None:
    assert canon(actual) == canon(expected)
