"""The hub releases the risk of a run of Cancelled events in one ``on_orders_done`` call (a mass
quote cancels hundreds). Differential check: a hub doing that and a hub whose ``on_orders_done``
calls ``on_order_done`` order by order (what the router did before) go through the same random
flow of mass quotes, crossing orders, cancels and mass cancels and must agree, after every step,
on the risk state digest, every participant's margin and positions, and the holders re-marked on
a price move; ``RiskEngine.verify`` must hold on both."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.risk import RiskConfig
from hub.core import QuoteSpec
from hub.v1 import common_pb2 as cpb
from tests.risk.support import AAPL, MSFT, TICK, M, P, RiskHub, hub_config

TRADERS = ("mm-1", "scalper-1", "scalper-2")
SYMBOLS = {"AAPL": (AAPL, P), "MSFT": (MSFT, M)}


def _one_by_one(hub_risk) -> None:
    """Make ``on_orders_done`` the sequence of single calls it must be equivalent to."""
    def release(ts, order_ids):
        for oid in order_ids:
            hub_risk.on_order_done(ts, oid)
    hub_risk.on_orders_done = release


_ticks = st.integers(-3, 3)
_qty = st.integers(1, 4).map(lambda lots: lots * 100)
_quote = st.tuples(st.sampled_from(tuple(SYMBOLS)), _ticks, _qty, _ticks, _qty)
OPS = st.one_of(
    st.tuples(st.just("quote"), st.sampled_from(TRADERS), st.lists(_quote, min_size=1, max_size=5)),
    st.tuples(st.just("order"), st.sampled_from(TRADERS), st.sampled_from(tuple(SYMBOLS)),
              st.sampled_from((cpb.BUY, cpb.SELL)), _ticks, _qty, st.sampled_from((cpb.GTC, cpb.IOC))),
    st.tuples(st.just("cancel"), st.sampled_from(TRADERS), st.integers(0, 30)),
    st.tuples(st.just("mass_cancel"), st.sampled_from(TRADERS)),
)


def _apply(rh: RiskHub, op: tuple) -> object:
    kind, pid = op[0], op[1]
    who = rh.who[pid]
    if kind == "quote":
        quotes = [QuoteSpec(sym, SYMBOLS[sym][1] - (2 + bt) * TICK, bq, SYMBOLS[sym][1] + (2 + at) * TICK, aq)
                  for sym, bt, bq, at, aq in op[2]]  # bids and asks may cross other quotes
        _, rows, reason, _ = rh.hub.mass_quote(who, quotes, 0)
        return reason, rows
    if kind == "order":
        _, sym, side, ticks, qty, tif = op[1:]
        return rh.order(pid, sym, side, SYMBOLS[sym][1] + ticks * TICK, qty, tif=tif).reason
    if kind == "cancel":
        mine = sorted(rh.resting_ids(pid))
        if not mine:
            return None
        oid = mine[op[2] % len(mine)]
        sym = rh.hub._orders[oid].symbol
        return rh.cancel(pid, sym, oid).reason
    return rh.hub.mass_cancel(who, "", 0)


def _risk_view(rh: RiskHub) -> tuple:
    risk = rh.hub.risk
    risk.verify()  # every incremental cache equals its recomputation
    margins = tuple((pid, rh.view(pid)) for pid in TRADERS)
    holders = tuple(tuple(sorted(ins.holders)) for _, ins in sorted(risk._inst.items()))
    return risk.state_digest(), margins, holders


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=25))
def test_batched_release_of_cancelled_orders_equals_releasing_them_one_by_one(ops) -> None:
    config = hub_config(RiskConfig())
    batched, single = RiskHub(config), RiskHub(config)
    _one_by_one(single.hub.risk)
    try:
        for op in ops:
            assert _apply(batched, op) == _apply(single, op), op
            assert _risk_view(batched) == _risk_view(single), op
            batched.clock.advance(1_000_000)
            single.clock.advance(1_000_000)
    finally:
        for rh in (batched, single):
            rh.hub.scheduler.close()
            rh.hub.journal.close()
