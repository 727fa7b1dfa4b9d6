"""Cost of the pre-trade check chain per order (``python -m compliance.risk.bench``).

Builds a book of realistic state (participants holding positions and open orders in every
asset class, a hedged cross-class account, buckets already in use) and times
``check_order`` with ``timeit`` for: an accepted order that runs the whole chain (margin
settled by the no-credit bound), an accepted order whose margin needs the exact computation
with offset credits, a market order, and rejects at the first, middle and last check.
Also times the sequenced updates (``on_order_entered`` + ``on_order_done``, ``on_trade``).
Prints the minimum over many short repeats in ns per call; nothing is asserted.
"""

from __future__ import annotations

import argparse
import timeit

from compliance.risk.config import ParticipantRiskConfig, RiskConfig
from compliance.risk.engine import RiskEngine
from compliance.risk.events import Scope
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import AssetClass, OrderType, Side

SEC = 1_000_000_000


def build() -> RiskEngine:
    cfg = RiskConfig(participants=(
        ParticipantRiskConfig(participant_id="thin", collateral=(("USD", 60_000_00),)),
    ))
    engine = RiskEngine(cfg, DEFAULT_INSTRUMENTS)
    order_id = 1
    ts = SEC
    for i in range(20):  # twenty active participants with positions and open orders everywhere
        pid = f"p{i}"
        for inst in DEFAULT_INSTRUMENTS:
            q = inst.lot_size * 10
            ref = inst.reference_price
            for side, px in ((Side.BUY, ref - inst.tick_size), (Side.SELL, ref + inst.tick_size)):
                engine.on_order_entered(ts, pid, f"{pid}/s", order_id, inst.instrument_id, side, px, q)
                order_id += 1
            engine.on_trade(ts, inst.instrument_id, ref, inst.lot_size * 3, pid, "mm", 0, 0)
    # a hedged account: long AAPL against short ES futures, collateral too thin for per-class margin
    engine.on_trade(ts, 1, 190_0000, 1_579, "thin", "mm")
    engine.on_trade(ts, 3, 6000_00, 1, "mm", "thin")
    return engine


def _best(fn, number: int, repeat: int) -> float:
    """Minimum over ``repeat`` short runs (short runs dodge the noise of a shared machine)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def run(number: int = 5_000, repeat: int = 100) -> list[tuple[str, float]]:
    engine = build()
    ts = 10 * SEC
    check = engine.check_order
    lim, mkt, buy, sell = int(OrderType.LIMIT), int(OrderType.MARKET), int(Side.BUY), int(Side.SELL)
    cases = {
        "accept: full chain, limit order (margin by bound)":
            lambda: check(ts, "p3", "p3/s", 1, buy, lim, 190_0000, 100),
        "accept: full chain, exact cross-margin with offsets":
            lambda: check(ts, "thin", "thin/s", 3, sell, lim, 6000_00, 1),
        "accept: market order (valued at the band edge)":
            lambda: check(ts, "p3", "p3/s", 3, sell, mkt, 0, 2),
        "reject: MARGIN (last check, exact path)":
            lambda: check(ts, "thin", "thin/s", 3, buy, lim, 6000_00, 2),
        "reject: PRICE_BAND (middle)":
            lambda: check(ts, "p3", "p3/s", 1, buy, lim, 199_5100, 100),
    }
    out = []
    for name, fn in cases.items():
        out.append((name, _best(fn, number, repeat) * 1e9))
    engine.kill(ts, Scope.ASSET_CLASS, AssetClass.CRYPTO)
    best = _best(lambda: check(ts, "p3", "p3/s", 7, buy, lim, 95_000_00, 10_000), number, repeat)
    out.append(("reject: KILL_SWITCH (first check)", best * 1e9))
    out.append(("(timeit lambda overhead, included above)", _best(lambda: None, number, repeat) * 1e9))

    oid = [10_000_000]

    def enter_done() -> None:
        oid[0] += 1
        engine.on_order_entered(ts, "p4", "p4/s", oid[0], 2, buy, 420_0000, 10)
        engine.on_order_done(ts, oid[0])

    n_small = max(1, number // 10)
    out.append(("sequenced: on_order_entered + on_order_done", _best(enter_done, n_small, repeat) * 1e9))
    t = [ts]

    def trade_same() -> None:
        t[0] += 1_000
        engine.on_trade(t[0], 2, 420_0000, 5, "p5", "p6")

    flip = [0]

    def trade_moving() -> None:
        t[0] += 1_000
        flip[0] ^= 1
        engine.on_trade(t[0], 2, 420_0000 + 100 * flip[0], 5, "p5", "p6")

    out.append(("sequenced: on_trade at the previous price (re-marks 2)", _best(trade_same, n_small, repeat) * 1e9))
    best = _best(trade_moving, n_small, repeat)
    holders = len(engine._inst[2].holders)
    out.append((f"sequenced: on_trade at a new price (re-marks {holders} holders)", best * 1e9))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args(argv)
    rows = run(args.number, args.repeat)
    width = max(len(name) for name, _ in rows)
    print(f"{'case':<{width}}  ns/call")
    for name, ns in rows:
        print(f"{name:<{width}}  {ns:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
