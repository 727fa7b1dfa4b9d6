"""Differential harness: random command streams, both engines side by side, book invariants.

A stream is generated as a list of *genes* (fixed-width tuples of small non-negative ints) and
decoded into commands by :func:`decode_stream`. Gene 0 always decodes to the plainest choice, so
when Hypothesis shrinks genes toward zero the counterexample shrinks toward plain limit orders;
the seeded soak test draws genes from ``random.Random`` and shares the same decoder.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from matching.instruments import DEFAULT_INSTRUMENTS, Instrument, by_asset_class
from matching.interface import MatchingEngine
from matching.types import (
    Accepted,
    AssetClass,
    BookDelta,
    Cancel,
    Cancelled,
    CancelReason,
    Command,
    Done,
    EndOfSession,
    Event,
    Expired,
    MassCancel,
    MassCancelReport,
    NewOrder,
    OrderType,
    OrderView,
    Rejected,
    Replace,
    Replaced,
    SessionEndReport,
    Side,
    StpMode,
    TimeInForce,
    TopOfBook,
    Trade,
    decode_events,
    encode_command,
    encode_events,
)
from tests.support import build_engine

GENE_WIDTH = 8
GENE_MAX = 255
UNKNOWN_INSTRUMENT = 99

Gene = tuple[int, ...]


def instruments_of(asset_class: AssetClass) -> tuple[Instrument, ...]:
    return by_asset_class(DEFAULT_INSTRUMENTS)[AssetClass(asset_class)]


@dataclass
class StreamDecoder:
    """Turns genes into commands for one asset class.

    A shadow reference engine runs alongside, so cancels and replaces mostly aim at orders that
    are resting right now (sometimes at gone, foreign or never-issued ones), and replaces can
    pick "same price, less quantity" on purpose. Roughly 1 command in 10 carries an invalid value.
    """

    asset_class: AssetClass
    #: The engine's instruments; None for the asset class's default ones.
    instruments: tuple[Instrument, ...] | None = None
    #: The engine whose resting orders guide targeting. When given, its owner must process each
    #: command before asking for the next; when not, :meth:`decode` runs a private one.
    shadow: MatchingEngine | None = None
    seq: int = 0
    next_order_id: int = 1
    issued: list[tuple[int, int, int]] = field(default_factory=list)  # (order id, account, instrument)

    def __post_init__(self) -> None:
        if self.instruments is None:
            self.instruments = instruments_of(self.asset_class)
        self.by_id = {i.instrument_id: i for i in self.instruments}
        self._owns_shadow = self.shadow is None
        if self.shadow is None:
            self.shadow = build_engine("reference", self.asset_class, self.instruments)

    def decode(self, genes: list[Gene]) -> list[Command]:
        assert self._owns_shadow, "with an outside shadow engine, call command() and process yourself"
        out = []
        for gene in genes:
            cmd = self.command(gene)
            self.shadow.process(cmd)
            out.append(cmd)
        return out

    # -- choices (0 is always the plain, valid one) -------------------------------------------

    def _instrument(self, g: int) -> Instrument | None:
        return None if g % 64 == 63 else self.instruments[g % len(self.instruments)]

    @staticmethod
    def _price(inst: Instrument | None, g: int) -> int:
        if inst is None:
            return 100_000
        if g % 61 == 60:
            return inst.reference_price + inst.tick_size // 2 if inst.tick_size > 1 else 0
        return inst.reference_price + (g % 7 - 3) * inst.tick_size

    @staticmethod
    def _quantity(inst: Instrument | None, g: int) -> int:
        lot = inst.lot_size if inst else 1
        if g % 67 == 66:
            return 0
        if g % 67 == 65 and lot > 1:
            return lot + lot // 2
        return lot * (1 + g % 20)

    def _live(self) -> list[tuple[int, OrderView]]:
        return [(iid, o) for iid in self.shadow.instrument_ids for o in self.shadow.orders(iid)]

    def command(self, gene: Gene) -> Command:
        op, a, b, c, d, e, f, g = gene
        self.seq += 1
        seq, ts = self.seq, self.seq * 1_000
        kind = op % 100
        if kind < 72:
            return self._new_order(seq, ts, a, b, c, d, e, f, g)
        if kind < 96:
            live = self._live()
            if live and b % 8:
                iid, view = live[a % len(live)]
                order_id, account, price, remaining = view.order_id, view.account, view.price, view.remaining
            elif self.issued and b % 8 == 1:  # probably gone by now: filled, cancelled or expired
                order_id, account, iid = self.issued[a % len(self.issued)]
                price, remaining = 0, 0
            else:  # never issued
                order_id, account, iid = self.next_order_id + a % 3, 1 + a % 3, self.instruments[0].instrument_id
                price, remaining = 0, 0
            if c % 16 == 15:
                account = 1 + account % 3  # someone else's order
            if d % 32 == 31:
                iid = self.instruments[-1].instrument_id if iid != self.instruments[-1].instrument_id else 0
            if kind < 84:
                return Cancel(seq, ts, iid, order_id, account)
            inst = self.by_id.get(iid)
            if price and e % 4 == 0:  # same price, same or less quantity: keeps priority
                lot = inst.lot_size if inst else 1
                new_price, new_qty = price, max(lot, remaining - lot * (f % 3))
            else:
                new_price, new_qty = self._price(inst, e // 4), self._quantity(inst, f)
            return Replace(seq, ts, iid, order_id, account, new_price, new_qty)
        if kind < 98:
            inst = self._instrument(b)
            iid = 0 if a % 3 == 0 else (inst.instrument_id if inst else UNKNOWN_INSTRUMENT)
            return MassCancel(seq, ts, iid, 0 if c % 32 == 31 else 1 + c % 3)
        inst = self._instrument(b)
        iid = 0 if a % 2 == 0 else (inst.instrument_id if inst else UNKNOWN_INSTRUMENT)
        return EndOfSession(seq, ts, iid)

    def _new_order(self, seq: int, ts: int, a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> NewOrder:
        inst = self._instrument(a)
        if inst:
            iid = inst.instrument_id
        else:
            iid = UNKNOWN_INSTRUMENT if a % 2 else _other_class_instrument(self.asset_class)
        account = 0 if b % 97 == 96 else 1 + b % 3
        side = 3 if b % 89 == 88 else (Side.BUY, Side.SELL)[b // 3 % 2]
        otype, tif = _TYPE_TIF[c % len(_TYPE_TIF)] if c % 83 != 82 else _BAD_TYPE_TIF[c % len(_BAD_TYPE_TIF)]
        price = 0 if otype == OrderType.MARKET and c % 59 != 58 else self._price(inst, d)
        if price and inst and d % 61 != 60:  # lean toward resting: buys a tick lower, sells a tick higher
            price += inst.tick_size if side == Side.SELL else -inst.tick_size
        quantity = self._quantity(inst, e if tif in (GTC, DAY) else e % 8)
        lot = inst.lot_size if inst else 1
        display = 0
        if f % 4 == 3 and otype == OrderType.LIMIT and tif in (GTC, DAY):
            display = lot * (1 + f // 4 % 4)  # may be >= quantity: rejected
        elif f % 71 == 70:
            display = -lot if f % 2 else lot
        post_only = 1 if f % 9 == 8 and tif in (GTC, DAY) else (2 if f % 101 == 100 else 0)
        stp = _STP[g % len(_STP)] if g % 79 != 78 else 4
        if g % 43 == 42:
            order_id = 0 if g % 2 else max(1, self.next_order_id - 1 - g % 3)  # invalid or stale
        else:
            order_id = self.next_order_id
            self.next_order_id += 1 + (g % 50 == 49)  # ids may skip
        self.issued.append((order_id, account, iid))
        return NewOrder(seq, ts, iid, order_id, account, side, otype, tif, price, quantity, display, post_only, stp)


def _other_class_instrument(asset_class: AssetClass) -> int:
    other = AssetClass.FX if asset_class != AssetClass.FX else AssetClass.EQUITY
    return instruments_of(other)[0].instrument_id


L, MKT = OrderType.LIMIT, OrderType.MARKET
GTC, DAY, IOC, FOK = TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
_TYPE_TIF = ((L, GTC), (L, GTC), (L, DAY), (L, IOC), (L, GTC), (L, FOK), (L, DAY), (MKT, IOC), (L, GTC),
             (MKT, FOK), (L, IOC), (L, FOK))
_BAD_TYPE_TIF = ((MKT, GTC), (MKT, DAY), (L, 0), (L, 5), (0, GTC), (3, IOC))
_STP = (StpMode.NONE, StpMode.CANCEL_RESTING, StpMode.CANCEL_INCOMING, StpMode.CANCEL_BOTH, StpMode.NONE)


def decode_stream(asset_class: AssetClass, genes: list[Gene],
                  instruments: tuple[Instrument, ...] | None = None) -> list[Command]:
    return StreamDecoder(AssetClass(asset_class), instruments).decode(genes)


#: Odd equities that reach checks the default set cannot: a lot below the minimum quantity,
#: a maximum quantity inside the generated range, a tick above 1, and a notional cap (with a
#: contract multiplier) that about a third of generated orders exceed.
ODD_EQUITIES = (
    Instrument(instrument_id=21, symbol="ODDLOT", asset_class=AssetClass.EQUITY, currency="USD",
               price_scale=2, quantity_scale=0, tick_size=5, lot_size=10, min_quantity=30,
               max_quantity=180, max_notional=10**9, contract_multiplier=1, reference_price=100_00,
               price_band_bps=500),
    Instrument(instrument_id=22, symbol="CAPPED", asset_class=AssetClass.EQUITY, currency="USD",
               price_scale=2, quantity_scale=0, tick_size=1, lot_size=1, min_quantity=1,
               max_quantity=1_000, max_notional=1_500_00, contract_multiplier=2, reference_price=50_00,
               price_band_bps=500),
)


def random_genes(rng: random.Random, n: int) -> list[Gene]:
    return [tuple(rng.randint(0, GENE_MAX) for _ in range(GENE_WIDTH)) for _ in range(n)]


# -- INVARIANTS ------------------------------------------------------------------------------


class InvariantChecker:
    """Checks one engine after every command against the events that command produced.

    Keeps its own ledger of every live order's remaining quantity, updated only from events:
    after each command the engine's resting orders must equal that ledger exactly, so every
    change of quantity is explained by an event (quantity conservation).
    """

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.resync()

    def _views(self) -> dict[int, tuple[int, OrderView]]:
        return {o.order_id: (iid, o) for iid in self.engine.instrument_ids for o in self.engine.orders(iid)}

    def resync(self) -> None:
        """Take the engine's current state as the starting point of the next check."""
        self.views = self._views()
        self.live = {oid: view.remaining for oid, (_, view) in self.views.items()}
        self.depths = {iid: self.engine.depth(iid) for iid in self.engine.instrument_ids}
        self.last_trade_id = self.engine.last_trade_id

    def check(self, cmd: Command, events: list[Event]) -> None:
        engine = self.engine
        before_views, before_depths = self.views, self.depths
        live = dict(self.live)
        trade_id = self.last_trade_id
        taker_start: dict[int, int] = {}
        taker_end: dict[int, int] = {}
        traded = 0
        makers: set[int] = set()
        mass_cancelled = expired = 0
        for e in events:
            assert e.seq == cmd.seq, e
            if isinstance(e, Rejected):
                assert len(events) == 1, "a rejected command emits nothing else"
            elif isinstance(e, Accepted):
                assert e.order_id not in live
                live[e.order_id] = e.quantity
                taker_start[e.order_id] = e.quantity
            elif isinstance(e, Replaced):
                assert e.order_id in live and e.remaining > 0
                live[e.order_id] = e.remaining
                if not e.priority_kept:
                    taker_start[e.order_id] = e.remaining
            elif isinstance(e, Trade):
                assert e.quantity > 0
                trade_id += 1
                assert e.trade_id == trade_id, "trade ids increase by one"
                assert live[e.maker_order_id] - e.quantity == e.maker_remaining >= 0
                assert live[e.taker_order_id] - e.quantity == e.taker_remaining >= 0
                live[e.maker_order_id] -= e.quantity
                live[e.taker_order_id] -= e.quantity
                maker_iid, maker = before_views[e.maker_order_id]
                assert maker_iid == e.instrument_id
                assert e.price == maker.price, "trades happen at the maker's price"
                assert e.aggressor_side != maker.side
                assert e.taker_order_id in taker_start
                if cmd.price:  # a limit (or replaced) taker never trades worse than its limit
                    assert e.price <= cmd.price if e.aggressor_side == Side.BUY else e.price >= cmd.price
                traded += e.quantity
                makers.add(e.maker_order_id)
            elif isinstance(e, Done):
                assert live.pop(e.order_id) == 0
                taker_end.setdefault(e.order_id, 0)
            elif isinstance(e, Cancelled | Expired):
                assert e.remaining > 0
                assert live.pop(e.order_id) == e.remaining
                taker_end.setdefault(e.order_id, e.remaining)
                mass_cancelled += isinstance(e, Cancelled) and e.reason == CancelReason.MASS_CANCEL
                expired += isinstance(e, Expired)
            elif isinstance(e, MassCancelReport):
                assert e.cancelled_count == mass_cancelled and e is events[-1]
            elif isinstance(e, SessionEndReport):
                assert e.expired_count == expired and e is events[-1]
        after_views = self._views()
        resting = {oid: view.remaining for oid, (_, view) in after_views.items()}
        assert resting == live, "resting orders differ from the event ledger"
        # Traded quantity is conserved: the makers together and the taker each lose exactly what traded.
        assert sum(before_views[m][1].remaining - resting.get(m, 0) for m in makers) == traded
        takers = {e.taker_order_id for e in events if isinstance(e, Trade)}
        assert len(takers) <= 1
        for t in takers:
            assert taker_start[t] - resting.get(t, taker_end.get(t, 0)) == traded
        assert engine.last_trade_id == trade_id

        depths = {iid: engine.depth(iid) for iid in engine.instrument_ids}
        for iid, depth in depths.items():
            check_book(depth, engine.orders(iid))
            check_market_data(before_depths[iid], depth, [
                e for e in events if isinstance(e, BookDelta | TopOfBook) and e.instrument_id == iid])
        self.live, self.views, self.depths, self.last_trade_id = live, after_views, depths, trade_id


def check_book(depth, orders) -> None:
    bid_prices = [p for p, _ in depth.bids]
    ask_prices = [p for p, _ in depth.asks]
    assert bid_prices == sorted(set(bid_prices), reverse=True)
    assert ask_prices == sorted(set(ask_prices))
    if bid_prices and ask_prices:
        assert bid_prices[0] < ask_prices[0], "book crossed at rest"
    visible: dict[tuple[int, int], int] = defaultdict(int)
    for o in orders:
        assert o.remaining > 0
        assert 0 < o.display <= o.remaining
        if o.display_size:
            assert o.display <= o.display_size
        else:
            assert o.display == o.remaining
        assert o.time_in_force in (TimeInForce.GTC, TimeInForce.DAY)
        visible[(o.side, o.price)] += o.display
    assert [(p, q) for p, q in depth.bids] == [(p, visible[(Side.BUY, p)]) for p in bid_prices]
    assert [(p, q) for p, q in depth.asks] == [(p, visible[(Side.SELL, p)]) for p in ask_prices]
    assert len(visible) == len(bid_prices) + len(ask_prices)
    # orders() is in priority order: bids best first, then asks best first
    sides = [o.side for o in orders]
    assert sides == sorted(sides)
    bids = [o.price for o in orders if o.side == Side.BUY]
    asks = [o.price for o in orders if o.side == Side.SELL]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)


def _top(depth) -> tuple[int, int, int, int]:
    bid = depth.bids[0] if depth.bids else (0, 0)
    ask = depth.asks[0] if depth.asks else (0, 0)
    return (*bid, *ask)


def check_market_data(before, after, events: list[Event]) -> None:
    """BookDelta for exactly the levels whose visible size changed, then TopOfBook iff the top changed."""
    levels_before = {(Side.BUY, p): q for p, q in before.bids} | {(Side.SELL, p): q for p, q in before.asks}
    levels_after = {(Side.BUY, p): q for p, q in after.bids} | {(Side.SELL, p): q for p, q in after.asks}
    changed = {k: levels_after.get(k, 0) for k in levels_before.keys() | levels_after.keys()
               if levels_before.get(k, 0) != levels_after.get(k, 0)}
    deltas = [e for e in events if isinstance(e, BookDelta)]
    tops = [e for e in events if isinstance(e, TopOfBook)]
    assert {(e.side, e.price): e.visible_quantity for e in deltas} == changed
    assert len(deltas) == len(changed), "one delta per changed level"
    if _top(before) != _top(after):
        assert [tuple(t[2:]) for t in tops] == [_top(after)]
        assert events[-1] is tops[0]
    else:
        assert tops == []


# -- DIFFERENTIAL RUN ------------------------------------------------------------------------


def describe(commands: list[Command]) -> str:
    return "[\n" + "".join(f"    {c!r},\n" for c in commands) + "]"


def run_differential(asset_class: AssetClass, commands: list[Command] | None = None, *,
                     genes: list[Gene] | None = None, instruments: tuple[Instrument, ...] | None = None,
                     invariant_every: int = 1) -> list[Command]:
    """Feed a stream one command at a time to both engines: compare encoded events, digest and
    counters after every command, and check invariants on both engines after every
    ``invariant_every``-th command (and the last). The stream is ``commands``, or ``genes``
    decoded on the fly with the reference engine under test as the decoder's shadow.
    Returns the commands run; any failure message ends with the stream up to the failure."""
    ref = build_engine("reference", asset_class, instruments)
    cy = build_engine("cython", asset_class, instruments)
    if genes is not None:
        decoder = StreamDecoder(AssetClass(asset_class), instruments, shadow=ref)
        source = (decoder.command(g) for g in genes)
        total = len(genes)
    else:
        source, total = iter(commands), len(commands)
    checkers = (InvariantChecker(ref), InvariantChecker(cy))
    done: list[Command] = []
    try:
        for i, cmd in enumerate(source):
            done.append(cmd)
            ref_events = ref.process(cmd)
            ref_bytes = encode_events(ref_events)
            cy_bytes = cy.process_packed(encode_command(cmd))
            assert cy_bytes == ref_bytes, (
                f"events differ\nreference: {ref_events!r}\ncython:    {decode_events(cy_bytes)!r}")
            assert cy.digest() == ref.digest(), "digests differ"
            assert (cy.last_order_id, cy.last_trade_id, cy.last_seq) == (
                ref.last_order_id, ref.last_trade_id, ref.last_seq)
            if i % invariant_every == 0 or i == total - 1:
                checkers[0].check(cmd, ref_events)
                checkers[1].check(cmd, decode_events(cy_bytes))
            elif (i + 1) % invariant_every == 0 or i + 1 == total - 1:
                for checker in checkers:
                    checker.resync()  # the next command is checked from here
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nat command {len(done) - 1} of the {AssetClass(asset_class).name} "
                             f"stream:\n{describe(done)}") from exc
    return done
