"""Helpers of the hub-level risk tier: a hub on a fake clock (in memory or on the durable ledger,
restartable on the same data directory), trades driven through the real order path, and
readers of what the hub journaled about risk.

The hub here is the real ``hub.core.Hub``: orders go through the gateway checks, the pre-trade
risk check at sequencing time, the engine, the journal and the event routing that feeds the
risk engine. Only the clock is fake (every hub time is a number the test chose) and the
fairness rules are off (nothing is held behind a latency floor the fake clock would never reach).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compliance.risk import RiskConfig
from hub.auth import Identity
from hub.config import HubConfig
from hub.core import Hub, OrderSpec
from hub.fairness import FairnessConfig, Preset
from hub.journal import EntryKind, InMemoryJournal
from hub.recovery import recover
from hub.server import open_ledger_journal
from hub.v1 import common_pb2 as cpb
from ledger.records import RecordType, decode, risk_cancel_orders
from ledger.store import LedgerStore
from matching.types import AssetClass, Cancelled, Trade

SEC = 1_000_000_000
MS = 1_000_000
T0 = 1_767_225_600 * SEC + 10 * SEC  # 2026-01-01T00:00:10Z: ten seconds into a trading day
P = 190_0000  # AAPL reference price (price scale 4, tick 100)
TICK = 100
M = 420_0000  # MSFT reference price
ES_REF = 6000_00  # ESZ6 (price scale 2, tick 25, multiplier 50)
AAPL, MSFT, ES, GC, EURUSD, GBPUSD, BTC, ETH = range(1, 9)
BUY, SELL = cpb.BUY, cpb.SELL


class FakeClock:
    """Hub time that moves only when the test moves it. ``step`` > 0 makes every read advance
    the clock by that much afterwards (a hub whose every step is slow)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now
        self.step = 0

    def __call__(self) -> int:
        now = self.now
        self.now += self.step
        return now

    def advance(self, ns: int) -> int:
        self.now += ns
        return self.now


def hub_config(risk: RiskConfig | None = None, data_dir: str | Path | None = None) -> HubConfig:
    """The embedded defaults (instruments, dev participants, fees) with fairness off and the given
    risk configuration (default: the real ``RiskConfig()`` defaults)."""
    cfg = replace(HubConfig.default(), fairness=FairnessConfig(preset=Preset.OFF), risk=risk or RiskConfig())
    if data_dir is not None:
        cfg = replace(cfg, data_dir=str(data_dir))
    return cfg.validated()


@dataclass
class Sent:
    """What ``Hub.submit_order`` returned, unpacked."""

    outcome: Any
    reason: int
    text: str

    @property
    def accepted(self) -> bool:
        return self.outcome is not None and self.reason == 0

    @property
    def order_id(self) -> int:
        assert self.outcome is not None, f"refused: {self.reason} {self.text}"
        return self.outcome.seq_first

    def trades(self) -> list[Trade]:
        return [ev for ev in self.outcome.events if type(ev) is Trade] if self.outcome else []


class RiskHub:
    """A real hub on a fake clock. ``durable``: on the SQLite ledger of ``data_dir`` and able to
    ``restart`` (stop as ``run_server`` stops, then recover from the ledger as it starts)."""

    def __init__(self, config: HubConfig, clock: FakeClock | None = None, durable: bool = False) -> None:
        self.config = config
        self.clock = clock or FakeClock()
        self.durable = durable
        self.who = {p.id: Identity.of(p) for p in config.participants}
        self.hub = self._start()

    def _start(self) -> Hub:
        if not self.durable:
            return Hub(self.config, InMemoryJournal(), clock=self.clock)
        journal = open_ledger_journal(self.config)
        hub = Hub(self.config, journal, clock=self.clock)
        hub.accepting = False
        hub.recovery = recover(hub, journal)  # what run_server does before SERVING
        hub.accepting = True
        return hub

    def stop(self) -> None:
        """A clean stop, as ``run_server`` does it: refuse, close the last block, close the ledger."""
        hub = self.hub
        hub.accepting = False
        hub.scheduler.close()
        if self.durable:
            hub.journal.checkpoint(hub.state_digest_bytes(), hub.clock())
        hub.journal.close()

    def restart(self) -> Hub:
        assert self.durable, "only a hub on the durable ledger can restart"
        self.stop()
        self.hub = self._start()
        return self.hub

    # -- order entry

    def order(self, participant: str, symbol: str, side: int, price: int, quantity: int, *,
              order_type: int = cpb.LIMIT, tif: int = cpb.GTC, session_id: str = "") -> Sent:
        spec = OrderSpec(symbol, side, order_type, tif, price, quantity)
        return Sent(*self.hub.submit_order(self.who[participant], spec, session_id))

    def buy(self, participant: str, symbol: str, price: int, quantity: int, **kw: Any) -> Sent:
        return self.order(participant, symbol, BUY, price, quantity, **kw)

    def sell(self, participant: str, symbol: str, price: int, quantity: int, **kw: Any) -> Sent:
        return self.order(participant, symbol, SELL, price, quantity, **kw)

    def trade(self, symbol: str, price: int, quantity: int, buyer: str, seller: str) -> list[Trade]:
        """A trade through the real order path: ``seller`` rests a sell, ``buyer`` takes it with an
        IOC buy at the same price. Fails the test unless exactly that trade happened."""
        maker = self.sell(seller, symbol, price, quantity)
        assert maker.accepted, f"{seller}'s resting sell {quantity} {symbol} @ {price} refused: {maker.reason} {maker.text}"
        taker = self.buy(buyer, symbol, price, quantity, tif=cpb.IOC)
        assert taker.accepted, f"{buyer}'s buy {quantity} {symbol} @ {price} refused: {taker.reason} {taker.text}"
        trades = taker.trades()
        assert [(t.price, t.quantity) for t in trades] == [(price, quantity)], trades
        return trades

    def cancel(self, participant: str, symbol: str, order_id: int) -> Sent:
        return Sent(*self.hub.cancel_order(self.who[participant], symbol, order_id))

    def replace(self, participant: str, symbol: str, order_id: int, price: int, quantity: int) -> Sent:
        return Sent(*self.hub.replace_order(self.who[participant], symbol, order_id, price, quantity))

    # -- operator

    def kill(self, scope: int, target: str = "", note: str = "") -> int:
        return self.hub.kill(self.who["operator"], scope, target, note=note)

    def lift(self, scope: int, target: str = "") -> int:
        return self.hub.lift(self.who["operator"], scope, target)

    # -- truth

    def view(self, participant: str, ts: int | None = None):
        return self.hub.risk.participant_view(self.clock.now if ts is None else ts, participant)

    def limit(self, participant: str, instrument_id: int) -> int:
        return next(lv.position_limit for lv in self.hub.risk_view(self.who[participant]).limits
                    if lv.instrument_id == instrument_id)

    def resting_ids(self, participant: str | None = None) -> set[int]:
        with self.hub._lock:
            return {oid for oid, m in self.hub._orders.items() if participant is None or m.participant_id == participant}

    def admin_details(self) -> list[tuple[int, dict]]:
        """(sequence, detail) of every ADMIN record journaled so far, in sequence order."""
        return admin_details(self.hub.journal)

    def risk_events(self) -> list[dict]:
        """Every risk event record the hub journaled (the ``risk_events`` ADMIN records), in order."""
        return [ev for _, d in self.admin_details() if d.get("action") == "risk_events" for ev in d["events"]]


def admin_details(journal) -> list[tuple[int, dict]]:
    if isinstance(journal, InMemoryJournal):
        return [(e.seq_first, json.loads(e.detail)) for e in journal.entries() if e.kind == EntryKind.ADMIN]
    if isinstance(journal, LedgerStore):
        if hasattr(journal, "flush"):
            journal.flush()
        out = []
        for _idx, _seq, payload, _leaf, _chain in journal.iter_records():
            rec = decode(payload)
            if rec.record_type == RecordType.ADMIN:
                out.append((rec.seq, rec.detail_json()))
        return out
    raise TypeError(f"cannot read ADMIN records of {type(journal).__name__}")


def ledger_cancels(store: LedgerStore, reasons: dict[int, int] | None = None) -> dict[int, int]:
    """Order id -> sequence of every cancel the ledger holds: engine Cancelled events and the orders
    of compact ``risk_cancel`` records (one record per risk-cancel step). ``reasons`` gets each
    order's cancel reason (CancelReason.RISK for the compact records)."""
    from matching.types import CancelReason, decode_events

    out = {}
    for _idx, _seq, payload, _leaf, _chain in store.iter_records():
        rec = decode(payload)
        if rec.record_type == RecordType.EVENT:
            (ev,) = decode_events(rec.engine_record)
            if type(ev) is Cancelled:
                out[ev.order_id] = ev.seq
                if reasons is not None:
                    reasons[ev.order_id] = ev.reason
        elif rec.record_type == RecordType.ADMIN and b'"risk_cancel"' in rec.detail:
            for oid in risk_cancel_orders(rec.detail_json()):
                out[oid] = rec.seq
                if reasons is not None:
                    reasons[oid] = CancelReason.RISK
    return out


def admin_records(store: LedgerStore, action: str) -> list[tuple[int, dict]]:
    """(sequence, detail) of every ADMIN record of ``action``."""
    return [(seq, d) for seq, d in admin_details(store) if d.get("action") == action]


def risk_cancel_records(store: LedgerStore) -> list[tuple[int, dict]]:
    """(sequence, detail) of every compact ``risk_cancel`` record."""
    return admin_records(store, "risk_cancel")


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def class_name(ac: AssetClass) -> str:
    return AssetClass(ac).name


def alternating_trades(rh: RiskHub, symbol: str, seconds: int, low: int, high: int,
                       pair: tuple[str, str] = ("scalper-1", "scalper-2"),
                       on_each: Callable[[int], None] | None = None) -> None:
    """One trade of 1 a second, alternating between two prices, the two participants taking turns
    as buyer so that neither builds a position; the clock moves one second before each."""
    a, b = pair
    for i in range(seconds):
        rh.clock.advance(SEC)
        buyer, seller = (a, b) if i % 2 else (b, a)
        rh.trade(symbol, high if i % 2 else low, 1, buyer, seller)
        if on_each is not None:
            on_each(i)
