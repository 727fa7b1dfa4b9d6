"""Matching-engine benchmark: one seeded order flow through every engine, timed and cross-checked.

    python -m matching.bench [--commands N] [--seed S] [--rounds R] [--chunk C] [--max-book M]
                             [--no-liquibook] [--json]

The flow is generated once (by driving the Cython engine, so cancels always name live orders and
passive orders sit near the current touch) and then replayed, unchanged, through:

* ``cython_batch``: ``CythonEngine.process_packed`` over pre-encoded chunks (the sequencer's path);
* ``cython_per_command``: ``CythonEngine.process(cmd)``, typed command in, typed events out;
* ``reference``: ``ReferenceEngine.process(cmd)`` on the same pre-built command objects;
* ``liquibook``: the C++ Liquibook engine through its SWIG binding (if installed), with every
  accept, fill and cancel reported back into Python through a director listener.

Engines run interleaved (every round runs each engine once, from a fresh engine, in rotating
order) and only processing is timed, block by block (``--chunk`` commands, default 10,000), with
each block's output consumed between blocks; building the inputs (command objects, encoded
chunks, Liquibook ``SimpleOrder`` objects) is never timed. ``events_per_s`` means *input
commands* per second.
The run ends by checking that all engines agree (trades, traded quantity and notional,
cancellations; and identical digests and event bytes for the three engines of this package)
and exits non-zero if they do not.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from matching.engine import create_engine
from matching.instruments import DEFAULT_INSTRUMENTS, Instrument, by_asset_class
from matching.interface import MatchingEngine
from matching.types import (
    RECORD_SIZE,
    RECORD_SLOTS,
    AssetClass,
    Cancel,
    Cancelled,
    Command,
    Done,
    Event,
    EventKind,
    NewOrder,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
    TopOfBook,
    encode_commands,
    encode_events,
)

try:  # optional comparison engine: pip install 'trading-hub[bench]'
    import liquibook
except ImportError:  # pragma: no cover - depends on the environment
    liquibook = None

ASSET_CLASS = AssetClass.EQUITY
INSTRUMENT_ID = 1  # AAPL: tick 100, lot 1, reference price 190_0000
ACCOUNTS = (1, 2, 3, 4)
ADD_SHARE = 0.55
CANCEL_SHARE = 0.30  # the rest (0.15) is aggressive
MARKET_SHARE_OF_AGGRESSIVE = 1 / 3
# Ticks from our own touch (positive = improving it, never crossing): mostly join or sit 1-3 back.
PASSIVE_OFFSETS = (1, 0, 0, 0, -1, -1, -1, -2, -2, -3, -3, -4, -5, -6)
AGGRESSIVE_THROUGH = (0, 0, 1, 2)  # ticks an IOC limit goes through the opposite touch
MAX_LOTS = 10
TS0 = 1_700_000_000_000_000_000

CYTHON_BATCH = "cython_batch"
CYTHON_PER_COMMAND = "cython_per_command"
REFERENCE = "reference"
LIQUIBOOK = "liquibook"
RATIOS = (
    (CYTHON_BATCH, LIQUIBOOK),
    (CYTHON_BATCH, REFERENCE),
    (CYTHON_PER_COMMAND, REFERENCE),
    (CYTHON_PER_COMMAND, LIQUIBOOK),
)


BlockT = TypeVar("BlockT")
OutT = TypeVar("OutT")


# -- FLOW ------------------------------------------------------------------------------------


@dataclass
class FlowStats:
    passive_adds: int = 0
    cancels: int = 0
    ioc_limits: int = 0
    market_iocs: int = 0
    resting_at_end: int = 0
    bid_levels_at_end: int = 0
    ask_levels_at_end: int = 0
    longest_queue_at_end: int = 0


@dataclass
class Flow:
    commands: list[Command]
    block_size: int  # commands per timed block (and per process_packed call)
    blocks: list[list[Command]]  # the commands in blocks of ``block_size``
    chunks: list[bytes]  # the same blocks, pre-encoded
    stats: FlowStats


@dataclass
class _FlowState:
    """What the generator needs to know about the book it is driving."""

    instrument: Instrument
    next_order_id: int = 1
    bid: int = 0  # best prices from the last TopOfBook event; 0 = empty side
    ask: int = 0
    live_ids: list[int] = field(default_factory=list)  # resting orders, for O(1) random choice
    live_index: dict[int, int] = field(default_factory=dict)
    live_account: dict[int, int] = field(default_factory=dict)

    def add_live(self, order_id: int, account: int) -> None:
        self.live_index[order_id] = len(self.live_ids)
        self.live_ids.append(order_id)
        self.live_account[order_id] = account

    def drop_live(self, order_id: int) -> None:
        index = self.live_index.pop(order_id, None)
        if index is None:
            return
        last = self.live_ids.pop()
        if last != order_id:
            self.live_ids[index] = last
            self.live_index[last] = index
        del self.live_account[order_id]

    def apply(self, cmd: Command, events: list[Event]) -> None:
        if isinstance(cmd, NewOrder) and cmd.time_in_force == TimeInForce.GTC:
            self.add_live(cmd.order_id, cmd.account)  # dropped below if it filled at once
        for ev in events:
            if isinstance(ev, Done | Cancelled):
                self.drop_live(ev.order_id)
            elif isinstance(ev, TopOfBook):
                self.bid, self.ask = ev.bid_price, ev.ask_price


def _equity_instruments() -> tuple[Instrument, ...]:
    return by_asset_class(DEFAULT_INSTRUMENTS)[ASSET_CLASS]


def _instrument() -> Instrument:
    (inst,) = (i for i in _equity_instruments() if i.instrument_id == INSTRUMENT_ID)
    return inst


def _new_engine(implementation: str) -> MatchingEngine:
    return create_engine(ASSET_CLASS, _equity_instruments(), implementation)


def _passive_price(rng: random.Random, st: _FlowState, side: int) -> int:
    """A price a few ticks around our own touch that never crosses the opposite one."""
    tick, ref = st.instrument.tick_size, st.instrument.reference_price
    offset = rng.choice(PASSIVE_OFFSETS) * tick
    if side == Side.BUY:
        anchor = st.bid or (st.ask - tick if st.ask else ref - tick)
        price = anchor + offset
        return min(price, st.ask - tick) if st.ask else price
    anchor = st.ask or (st.bid + tick if st.bid else ref + tick)
    price = anchor - offset
    return max(price, st.bid + tick) if st.bid else price


def _new_order(rng: random.Random, st: _FlowState, seq: int, side: int, otype: int, tif: int,
               price: int) -> NewOrder:
    order_id = st.next_order_id
    st.next_order_id += 1
    qty = rng.randint(1, MAX_LOTS) * st.instrument.lot_size
    return NewOrder(seq, TS0 + seq, INSTRUMENT_ID, order_id, rng.choice(ACCOUNTS), side, otype, tif,
                    price, qty, stp_mode=StpMode.NONE)


def _aggressive(rng: random.Random, st: _FlowState, seq: int, stats: FlowStats) -> NewOrder:
    side = rng.choice((Side.BUY, Side.SELL))
    if rng.random() < MARKET_SHARE_OF_AGGRESSIVE:
        stats.market_iocs += 1
        return _new_order(rng, st, seq, side, OrderType.MARKET, TimeInForce.IOC, 0)
    stats.ioc_limits += 1
    tick, ref = st.instrument.tick_size, st.instrument.reference_price
    through = rng.choice(AGGRESSIVE_THROUGH) * tick
    if side == Side.BUY:
        price = (st.ask or st.bid or ref) + through
    else:
        price = max((st.bid or st.ask or ref) - through, tick)
    return _new_order(rng, st, seq, side, OrderType.LIMIT, TimeInForce.IOC, price)


def _next_command(rng: random.Random, st: _FlowState, seq: int, stats: FlowStats,
                  max_book: int) -> Command:
    roll = rng.random()
    if roll < ADD_SHARE and len(st.live_ids) >= max_book:
        roll = ADD_SHARE  # the book is as deep as allowed: cancel instead of adding
    if ADD_SHARE <= roll < ADD_SHARE + CANCEL_SHARE and st.live_ids:
        stats.cancels += 1
        order_id = rng.choice(st.live_ids)
        return Cancel(seq, TS0 + seq, INSTRUMENT_ID, order_id, st.live_account[order_id])
    if roll >= ADD_SHARE + CANCEL_SHARE:
        return _aggressive(rng, st, seq, stats)
    stats.passive_adds += 1
    side = rng.choice((Side.BUY, Side.SELL))
    return _new_order(rng, st, seq, side, OrderType.LIMIT, TimeInForce.GTC,
                      _passive_price(rng, st, side))


def _book_shape(engine: MatchingEngine, stats: FlowStats) -> None:
    views = engine.orders(INSTRUMENT_ID)
    depth = engine.depth(INSTRUMENT_ID)
    queues: dict[tuple[int, int], int] = {}
    for v in views:
        queues[(v.side, v.price)] = queues.get((v.side, v.price), 0) + 1
    stats.resting_at_end = len(views)
    stats.bid_levels_at_end = len(depth.bids)
    stats.ask_levels_at_end = len(depth.asks)
    stats.longest_queue_at_end = max(queues.values(), default=0)


def generate_flow(n_commands: int, seed: int, chunk: int, max_book: int = 2_000) -> Flow:
    """A seeded mixed flow for one instrument, generated against a live engine.

    The nominal mix (55 % adds, 30 % cancels, 15 % aggressive) grows the book by about one order
    per ten commands, so once ``max_book`` orders rest a would-be add becomes a cancel; over a
    long flow that settles near 50 / 35 / 15 with a book of realistic depth."""
    rng = random.Random(seed)
    engine = _new_engine("cython")
    st = _FlowState(_instrument())
    stats = FlowStats()
    commands: list[Command] = []
    for seq in range(1, n_commands + 1):
        cmd = _next_command(rng, st, seq, stats, max_book)
        st.apply(cmd, engine.process(cmd))
        commands.append(cmd)
    _book_shape(engine, stats)
    blocks = [commands[i : i + chunk] for i in range(0, len(commands), chunk)]
    return Flow(commands, chunk, blocks, [encode_commands(b) for b in blocks], stats)


# -- RUNS ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    engine: str
    seconds: float
    commands: int
    out_events: int  # ours: encoded events; liquibook: accept, fill and cancel callbacks
    trades: int
    traded_quantity: int
    traded_notional: int  # sum of price * quantity
    cancellations: int  # user cancels plus unfilled IOC / market remainders
    rejects: int  # the flow is valid for every engine: must be 0 everywhere
    event_sha256: str | None = None
    event_bytes: int | None = None
    digest: str | None = None


class EventTally:
    """Running totals and hash of an encoded event stream, fed one block at a time."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.bytes = self.events = self.trades = self.quantity = self.notional = 0
        self.cancels = self.rejects = 0

    def add(self, buf: bytes) -> None:
        self.sha.update(buf)
        self.bytes += len(buf)
        slots = memoryview(buf).cast("q")
        kinds = slots[0::RECORD_SLOTS]
        prices, quantities = slots[4::RECORD_SLOTS], slots[5::RECORD_SLOTS]
        self.events += len(kinds)
        for i, kind in enumerate(kinds):
            if kind == EventKind.TRADE:
                self.trades += 1
                self.quantity += quantities[i]
                self.notional += prices[i] * quantities[i]
            elif kind == EventKind.CANCELLED:
                self.cancels += 1
            elif kind == EventKind.REJECTED:
                self.rejects += 1

    def result(self, name: str, seconds: float, n: int, engine: MatchingEngine) -> RunResult:
        return RunResult(name, seconds, n, self.events, self.trades, self.quantity, self.notional,
                         self.cancels, self.rejects, self.sha.hexdigest(), self.bytes,
                         engine.digest().hex())


def _timed(blocks: Sequence[BlockT], process_block: Callable[[BlockT], OutT],
           consume: Callable[[OutT], None]) -> float:
    """Seconds spent in ``process_block`` alone.

    Each block's output is consumed (hashed, counted) and dropped before the next block, as the
    sequencer journals and publishes each batch's events; holding a whole run's output instead
    makes the batch timing mostly page faults. The harness's own objects (the flow, Liquibook's
    pre-built orders) are frozen out of the garbage collector, so collections during the run
    cost what the engine's own allocations cost, not a traversal of 200k input commands."""
    clock = time.perf_counter
    seconds = 0.0
    gc.collect()
    gc.freeze()
    try:
        for block in blocks:
            t0 = clock()
            out = process_block(block)
            seconds += clock() - t0
            consume(out)
    finally:
        gc.unfreeze()
    return seconds


def run_cython_batch(flow: Flow) -> RunResult:
    engine = _new_engine("cython")
    tally = EventTally()
    seconds = _timed(flow.chunks, engine.process_packed, tally.add)
    return tally.result(CYTHON_BATCH, seconds, len(flow.commands), engine)


def _run_typed(name: str, implementation: str, flow: Flow) -> RunResult:
    engine = _new_engine(implementation)
    process = engine.process
    tally = EventTally()

    def process_block(commands: list[Command]) -> list[list[Event]]:
        return [process(cmd) for cmd in commands]

    def consume(outs: list[list[Event]]) -> None:
        tally.add(encode_events([ev for out in outs for ev in out]))

    seconds = _timed(flow.blocks, process_block, consume)
    return tally.result(name, seconds, len(flow.commands), engine)


def run_cython_per_command(flow: Flow) -> RunResult:
    return _run_typed(CYTHON_PER_COMMAND, "cython", flow)


def run_reference(flow: Flow) -> RunResult:
    return _run_typed(REFERENCE, "reference", flow)


# -- LIQUIBOOK -------------------------------------------------------------------------------
# DepthOrderBook<shared_ptr<SimpleOrder>, 5> is the book the binding can actually drive: its
# SimpleOrderBook class is wrapped without add()/cancel(). The listener is a SWIG director, so
# each accept, fill and cancel is a call from C++ into Python. Liquibook has no self-trade
# prevention, icebergs or post-only, which is why the flow uses none of them. IOC must be given
# as add()'s conditions argument (the order's own conditions are ignored by the book), a market
# order is price 0, and on_fill's fourth argument is the fill *price*, not the cost.

_LIQUIBOOK_LISTENER: type | None = None


def _liquibook_listener_type() -> type:
    """The director subclass, built on first use so that this module imports without liquibook."""
    global _LIQUIBOOK_LISTENER
    if _LIQUIBOOK_LISTENER is not None:
        return _LIQUIBOOK_LISTENER
    assert liquibook is not None

    class Listener(liquibook.OrderListener):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            liquibook.OrderListener.__init__(self)
            self.accepts = 0
            self.fills = 0
            self.filled_qty = 0
            self.filled_notional = 0
            self.cancels = 0
            self.rejects = 0

        def on_accept(self, order: Any) -> None:
            self.accepts += 1

        def on_reject(self, order: Any, reason: str) -> None:
            self.rejects += 1

        def on_fill(self, order: Any, matched_order: Any, fill_qty: int, fill_price: int) -> None:
            # Called once per match (inbound, resting); the binding passes the price here.
            self.fills += 1
            self.filled_qty += fill_qty
            self.filled_notional += fill_qty * fill_price

        def on_cancel(self, order: Any) -> None:
            self.cancels += 1

        def on_cancel_reject(self, order: Any, reason: str) -> None:
            self.rejects += 1

        def on_replace(self, order: Any, size_delta: int, new_price: int) -> None:
            pass

        def on_replace_reject(self, order: Any, reason: str) -> None:
            self.rejects += 1

        def on_trigger_stop(self, order: Any) -> None:
            pass

    _LIQUIBOOK_LISTENER = Listener
    return Listener


def _liquibook_ops(commands: Sequence[Command]) -> list[tuple[bool, Any, int]]:
    """(is_add, SimpleOrder, conditions) per command; a cancel reuses the order's object."""
    assert liquibook is not None
    orders: dict[int, Any] = {}
    ops: list[tuple[bool, Any, int]] = []
    for cmd in commands:
        if isinstance(cmd, NewOrder):
            order = liquibook.SimpleOrder(cmd.side == Side.BUY, cmd.price, cmd.quantity)
            orders[cmd.order_id] = order
            immediate = cmd.time_in_force == TimeInForce.IOC or cmd.order_type == OrderType.MARKET
            ops.append((True, order, liquibook.oc_immediate_or_cancel if immediate else 0))
        elif isinstance(cmd, Cancel):
            ops.append((False, orders[cmd.order_id], 0))
        else:
            raise TypeError(f"the Liquibook run supports new orders and cancels only: {cmd!r}")
    return ops


def run_liquibook(flow: Flow) -> RunResult:
    ops = _liquibook_ops(flow.commands)  # building SimpleOrders is not timed, like encoding
    blocks = [ops[i : i + flow.block_size] for i in range(0, len(ops), flow.block_size)]
    book = liquibook.DepthOrderBook()
    book.set_symbol("AAPL")
    listener = _liquibook_listener_type()()
    book.set_order_listener(listener)
    add, cancel = book.add, book.cancel

    def process_block(block: list[tuple[bool, Any, int]]) -> None:
        for is_add, order, conditions in block:
            if is_add:
                add(order, conditions)
            else:
                cancel(order)

    seconds = _timed(blocks, process_block, lambda _: None)
    book.set_order_listener(None)
    out_events = listener.accepts + listener.fills + listener.cancels
    return RunResult(LIQUIBOOK, seconds, len(ops), out_events, listener.fills, listener.filled_qty,
                     listener.filled_notional, listener.cancels, listener.rejects)


# -- DRIVER ----------------------------------------------------------------------------------

Runner = Callable[[Flow], RunResult]


def engines(with_liquibook: bool) -> dict[str, Runner]:
    runners: dict[str, Runner] = {
        CYTHON_BATCH: run_cython_batch,
        CYTHON_PER_COMMAND: run_cython_per_command,
        REFERENCE: run_reference,
    }
    if with_liquibook:
        runners[LIQUIBOOK] = run_liquibook
    return runners


def run_rounds(flow: Flow, runners: dict[str, Runner], rounds: int,
               log: Callable[[str], None]) -> dict[str, list[RunResult]]:
    """Every round runs every engine once, fresh, starting one engine later than the last."""
    names = list(runners)
    results: dict[str, list[RunResult]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            res = runners[name](flow)
            results[name].append(res)
            log(f"  round {r + 1}/{rounds} {name:<20} {res.seconds:8.3f} s")
    return results


def disagreements(results: dict[str, list[RunResult]]) -> list[str]:
    """Every run of every engine against the first run of this package's first engine."""
    runs = [res for per_engine in results.values() for res in per_engine]
    base = next(res for res in runs if res.engine != LIQUIBOOK)
    problems = [f"{res.engine}: {res.rejects} rejects" for res in runs if res.rejects]
    for res in runs:
        for attr in ("trades", "traded_quantity", "traded_notional", "cancellations"):
            if getattr(res, attr) != getattr(base, attr):
                problems.append(f"{res.engine}: {attr} {getattr(res, attr)} != "
                                f"{getattr(base, attr)} ({base.engine})")
        if res.engine != LIQUIBOOK:
            for attr in ("event_sha256", "event_bytes", "digest"):
                if getattr(res, attr) != getattr(base, attr):
                    problems.append(f"{res.engine}: {attr} differs from {base.engine}")
    return problems


def summarize(flow: Flow, results: dict[str, list[RunResult]], args: argparse.Namespace,
              liquibook_note: str | None) -> dict[str, Any]:
    n = len(flow.commands)
    best = {name: min(r.seconds for r in runs) for name, runs in results.items()}
    median = {name: statistics.median(r.seconds for r in runs) for name, runs in results.items()}
    first = {name: runs[0] for name, runs in results.items()}
    base = next(iter(first.values()))
    problems = disagreements(results)
    return {
        "events_per_s_meaning": "input commands processed per second (best round)",
        "events_per_s": {name: n / s for name, s in best.items()},
        "events_per_s_median": {name: n / s for name, s in median.items()},
        "output_events_per_s": {name: first[name].out_events / s for name, s in best.items()},
        "seconds_best": best,
        "ratios": {f"{a}/{b}": best[b] / best[a] for a, b in RATIOS if a in best and b in best},
        "counts": {
            "commands": n,
            "trades": base.trades,
            "traded_quantity": base.traded_quantity,
            "traded_notional": base.traded_notional,
            "cancellations": base.cancellations,
            "output_events": {name: r.out_events for name, r in first.items()},
            "flow": vars(flow.stats),
        },
        "config": {"seed": args.seed, "commands": n, "rounds": args.rounds, "chunk": args.chunk,
                   "max_book": args.max_book},
        "liquibook": liquibook_note or "included",
        "agree": not problems,
        "disagreements": problems,
    }


def print_report(summary: dict[str, Any]) -> None:
    counts, cfg, flow = summary["counts"], summary["config"], summary["counts"]["flow"]
    print(f"matching benchmark: {cfg['commands']:,} commands, seed {cfg['seed']}, AAPL in the "
          f"EQUITY engine, {cfg['rounds']} interleaved round(s), batch chunk {cfg['chunk']:,}")
    n = cfg["commands"]
    aggressive = flow["ioc_limits"] + flow["market_iocs"]
    print(f"flow: {flow['passive_adds']:,} passive GTC adds ({flow['passive_adds'] / n:.0%}), "
          f"{flow['cancels']:,} cancels ({flow['cancels'] / n:.0%}), {aggressive:,} aggressive "
          f"({aggressive / n:.0%}: {flow['ioc_limits']:,} IOC limits, {flow['market_iocs']:,} market "
          f"IOCs); book capped at {cfg['max_book']:,} orders; at end: "
          f"{flow['resting_at_end']:,} orders on {flow['bid_levels_at_end']} bid / "
          f"{flow['ask_levels_at_end']} ask levels, longest queue {flow['longest_queue_at_end']}")
    print("events_per_s = INPUT COMMANDS per second (not output events); timing excludes flow "
          "generation, encoding and SimpleOrder construction")
    print(f"{'engine':<20}{'cmds/s best':>14}{'cmds/s median':>15}{'out events/s':>14}"
          f"{'out events':>12}{'trades':>9}{'traded qty':>12}")
    for name, rate in summary["events_per_s"].items():
        out_rate = summary["output_events_per_s"][name]
        print(f"{name:<20}{rate:>14,.0f}{summary['events_per_s_median'][name]:>15,.0f}"
              f"{out_rate:>14,.0f}{counts['output_events'][name]:>12,}"
              f"{counts['trades']:>9,}{counts['traded_quantity']:>12,}")
    print("out events: ours = every encoded event (accepted, trade, done, cancelled, book delta, "
          "top of book); liquibook = accept + fill + cancel callbacks")
    for key, ratio in summary["ratios"].items():
        print(f"ratio {key:<40} {ratio:6.2f}x")
    if summary["liquibook"] != "included":
        print(f"liquibook: {summary['liquibook']}")
    if summary["agree"]:
        print(f"AGREE: {counts['trades']:,} trades, {counts['traded_quantity']:,} traded qty, "
              f"notional {counts['traded_notional']:,}, {counts['cancellations']:,} cancellations "
              "in every engine; identical digests and event bytes for cython_batch, "
              "cython_per_command and reference")
    else:
        print("DISAGREE:\n  " + "\n  ".join(summary["disagreements"]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m matching.bench", description=__doc__.split("\n")[0])
    p.add_argument("--commands", type=int, default=200_000, help="commands in the flow")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best is reported")
    p.add_argument("--chunk", type=int, default=10_000, help="commands per process_packed call")
    p.add_argument("--max-book", type=int, default=2_000,
                   help="resting orders above which the flow cancels instead of adding")
    p.add_argument("--no-liquibook", action="store_true", help="skip Liquibook even if installed")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = p.parse_args(argv)
    if min(args.commands, args.rounds, args.chunk, args.max_book) < 1:
        p.error("--commands, --rounds, --chunk and --max-book must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    note = None
    if args.no_liquibook:
        note = "skipped (--no-liquibook)"
    elif liquibook is None:
        note = "skipped: `import liquibook` failed (pip install liquibook)"
        log(f"note: liquibook {note}")
    t0 = time.perf_counter()
    flow = generate_flow(args.commands, args.seed, args.chunk, args.max_book)
    log(f"generated {len(flow.commands):,} commands in {time.perf_counter() - t0:.1f} s "
        f"({sum(map(len, flow.chunks)) // RECORD_SIZE:,} encoded records)")
    results = run_rounds(flow, engines(note is None), args.rounds, log)
    summary = summarize(flow, results, args, note)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print_report(summary)
    return 0 if summary["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
