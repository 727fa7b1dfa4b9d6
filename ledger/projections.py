"""Query projections derived from the ledger alone: orders, order events, trades, executions.

They are disposable: ``rebuild_projections`` drops and recreates them from the records, so a
report generator reads tables that can always be re-derived and checked against the Merkle-
committed history. ``proj_order_event`` is the RTS 24 order record: one row per order event with
the venue's event code (NEWO, REME, CAME, CAMO, REMO, EXPI, PARF, FILL), priority time stamp,
remaining (including hidden) and displayed quantity, traded quantity and the trade id (TVTIC).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.entries import decode_all
from ledger.records import RecordType, risk_cancel_orders
from ledger.store import LedgerStore
from matching.types import (
    Accepted,
    Cancelled,
    CancelReason,
    Done,
    Expired,
    NewOrder,
    OrderType,
    Rejected,
    Replaced,
    Trade,
    decode_commands,
    decode_events,
)

metadata = sa.MetaData()
_BIG = sa.BigInteger

proj_order = sa.Table(
    "proj_order", metadata,
    sa.Column("order_id", _BIG, primary_key=True),  # venue order id, constant over the order's life
    sa.Column("symbol", sa.String(32)), sa.Column("instrument_id", _BIG), sa.Column("asset_class", sa.SmallInteger),
    sa.Column("participant", sa.String(64)),  # the member that submitted it
    sa.Column("session", sa.String(128)), sa.Column("account", _BIG),  # account = client identification
    sa.Column("client_order_id", sa.String(64)),
    sa.Column("side", sa.SmallInteger), sa.Column("order_type", sa.SmallInteger),
    sa.Column("time_in_force", sa.SmallInteger), sa.Column("limit_price", _BIG),
    sa.Column("initial_quantity", _BIG), sa.Column("display_quantity", _BIG),
    sa.Column("post_only", sa.Boolean), sa.Column("stp_mode", sa.SmallInteger), sa.Column("is_quote", sa.Boolean),
    sa.Column("arrival_ns", _BIG), sa.Column("entry_ns", _BIG), sa.Column("entry_seq", _BIG),
    sa.Column("status", sa.String(16)), sa.Column("remaining", _BIG), sa.Column("traded_quantity", _BIG),
    sa.Column("last_seq", _BIG),
)

proj_order_event = sa.Table(
    "proj_order_event", metadata,
    sa.Column("row_id", _BIG, primary_key=True, autoincrement=False),
    sa.Column("seq", _BIG, index=True),  # sequence number: orders events that share a time stamp
    sa.Column("hub_time_ns", _BIG),
    sa.Column("order_id", _BIG, index=True),  # 0 for requests refused before an order id was given
    sa.Column("participant", sa.String(64)), sa.Column("account", _BIG), sa.Column("client_order_id", sa.String(64)),
    sa.Column("symbol", sa.String(32)), sa.Column("event", sa.String(4)), sa.Column("side", sa.SmallInteger),
    sa.Column("limit_price", _BIG), sa.Column("remaining", _BIG), sa.Column("displayed", _BIG),
    sa.Column("traded_quantity", _BIG), sa.Column("trade_price", _BIG), sa.Column("trade_id", _BIG),
    sa.Column("passive_aggressive", sa.String(4)), sa.Column("priority_ns", _BIG),
    sa.Column("reason", sa.Integer),
)

proj_trade = sa.Table(
    "proj_trade", metadata,
    sa.Column("trade_id", sa.String(24), primary_key=True),  # asset class + engine trade id
    sa.Column("seq", _BIG), sa.Column("hub_time_ns", _BIG), sa.Column("symbol", sa.String(32)),
    sa.Column("price", _BIG), sa.Column("quantity", _BIG), sa.Column("aggressor_side", sa.SmallInteger),
    sa.Column("maker_order_id", _BIG), sa.Column("maker_account", _BIG), sa.Column("maker_participant", sa.String(64)),
    sa.Column("taker_order_id", _BIG), sa.Column("taker_account", _BIG), sa.Column("taker_participant", sa.String(64)),
)

proj_execution = sa.Table(
    "proj_execution", metadata,
    sa.Column("row_id", _BIG, primary_key=True, autoincrement=False),
    sa.Column("participant", sa.String(64), index=True), sa.Column("account", _BIG),
    sa.Column("order_id", _BIG), sa.Column("trade_id", sa.String(24)), sa.Column("seq", _BIG),
    sa.Column("hub_time_ns", _BIG), sa.Column("symbol", sa.String(32)), sa.Column("side", sa.SmallInteger),
    sa.Column("price", _BIG), sa.Column("quantity", _BIG), sa.Column("liquidity", sa.String(5)),  # maker / taker
)

#: Cancellations the participant asked for vs. those the venue's own rules made.
_MEMBER_CANCELS = {CancelReason.USER_REQUESTED, CancelReason.MASS_CANCEL}


@dataclass
class _Order:
    row: dict
    priority_ns: int
    displayed: int  # the visible slice, tracked exactly as the book does (icebergs refill)

    def reset_display(self) -> None:
        peak, remaining = self.row["display_quantity"], self.row["remaining"]
        self.displayed = min(peak, remaining) if peak else remaining


@dataclass
class ProjectionReport:
    records: int = 0
    orders: int = 0
    order_events: int = 0
    trades: int = 0
    executions: int = 0
    seconds: float = 0.0


class _Builder:
    def __init__(self, instruments: dict[int, dict]) -> None:
        self.instruments = instruments
        self.orders: dict[int, _Order] = {}
        self.finished: list[dict] = []
        self.events: list[dict] = []
        self.trades: list[dict] = []
        self.executions: list[dict] = []
        self.command = None  # the record of the command whose events follow

    def _event(self, seq: int, ts: int, order: _Order | None, event: str, **fields) -> None:
        base = {"row_id": len(self.events), "seq": seq, "hub_time_ns": ts, "order_id": 0, "participant": "",
                "account": 0, "client_order_id": "", "symbol": "", "event": event, "side": 0, "limit_price": 0,
                "remaining": 0, "displayed": 0, "traded_quantity": 0, "trade_price": 0, "trade_id": 0,
                "passive_aggressive": "", "priority_ns": 0, "reason": 0}
        if order is not None:
            r = order.row
            base.update(order_id=r["order_id"], participant=r["participant"], account=r["account"],
                        client_order_id=r["client_order_id"], symbol=r["symbol"], side=r["side"],
                        limit_price=r["limit_price"], remaining=r["remaining"], displayed=order.displayed,
                        priority_ns=order.priority_ns)
        base.update(fields)
        self.events.append(base)

    def on_command(self, rec) -> None:
        (cmd,) = decode_commands(rec.engine_record)
        self.command = (rec, cmd)
        if type(cmd) is NewOrder:
            inst = self.instruments.get(cmd.instrument_id, {})
            self.orders[cmd.order_id] = _Order({
                "order_id": cmd.order_id, "symbol": inst.get("symbol", str(cmd.instrument_id)),
                "instrument_id": cmd.instrument_id, "asset_class": rec.asset_class, "participant": rec.participant,
                "session": rec.session, "account": cmd.account, "client_order_id": rec.client_order_id,
                "side": cmd.side, "order_type": cmd.order_type, "time_in_force": cmd.time_in_force,
                "limit_price": cmd.price if cmd.order_type == OrderType.LIMIT else 0,
                "initial_quantity": cmd.quantity, "display_quantity": cmd.display_quantity,
                "post_only": bool(cmd.post_only), "stp_mode": cmd.stp_mode, "is_quote": rec.is_quote,
                "arrival_ns": rec.arrival_ns, "entry_ns": rec.hub_time_ns, "entry_seq": cmd.seq,
                "status": "NEW", "remaining": cmd.quantity, "traded_quantity": 0, "last_seq": cmd.seq,
            }, rec.hub_time_ns, 0)
            self.orders[cmd.order_id].reset_display()

    def _close(self, order_id: int, status: str) -> None:
        order = self.orders.pop(order_id, None)
        if order is not None:
            order.row["status"] = status
            self.finished.append(order.row)

    def on_event(self, rec) -> None:
        (ev,) = decode_events(rec.engine_record)
        seq, ts = rec.seq, rec.hub_time_ns
        command_rec, cmd = self.command
        t = type(ev)
        if t is Accepted:
            self._event(seq, ts, self.orders.get(ev.order_id), "NEWO")
        elif t is Rejected:
            order = self.orders.get(ev.order_id) if type(cmd) is NewOrder else None
            if order is not None:
                order.row["remaining"] = order.displayed = 0
                self._event(seq, ts, order, "REMO", reason=ev.reason)
                self._close(ev.order_id, "REJECTED")
            else:  # a cancel / replace / mass cancel that was refused: the order itself is unchanged
                self._event(seq, ts, None, "REMO", order_id=ev.order_id, participant=command_rec.participant,
                            account=ev.account, reason=ev.reason)
        elif t is Trade:
            self._trade(rec, ev)
        elif t is Done:
            self._close(ev.order_id, "FILLED")
        elif t is Cancelled:
            order = self.orders.get(ev.order_id)
            if order is not None:
                order.row["remaining"] = order.displayed = 0
                by_member = ev.reason in _MEMBER_CANCELS and command_rec.participant == order.row["participant"]
                self._event(seq, ts, order, "CAME" if by_member else "CAMO", reason=ev.reason)
                self._close(ev.order_id, "CANCELLED")
        elif t is Expired:
            order = self.orders.get(ev.order_id)
            if order is not None:
                order.row["remaining"] = order.displayed = 0
                self._event(seq, ts, order, "EXPI")
                self._close(ev.order_id, "EXPIRED")
        elif t is Replaced:
            order = self.orders.get(ev.order_id)
            if order is not None:
                order.row.update(limit_price=ev.price, remaining=ev.remaining, last_seq=seq)
                if ev.priority_kept:
                    order.displayed = min(order.displayed, ev.remaining)
                else:
                    order.priority_ns = ts  # lost priority: the priority time stamp resets
                    order.reset_display()
                self._event(seq, ts, order, "REME")

    def _trade(self, rec, ev: Trade) -> None:
        trade_id = f"{rec.asset_class}-{ev.trade_id}"
        maker, taker = self.orders.get(ev.maker_order_id), self.orders.get(ev.taker_order_id)
        self.trades.append({
            "trade_id": trade_id, "seq": rec.seq, "hub_time_ns": rec.hub_time_ns,
            "symbol": (maker or taker).row["symbol"] if (maker or taker) else "", "price": ev.price,
            "quantity": ev.quantity, "aggressor_side": ev.aggressor_side,
            "maker_order_id": ev.maker_order_id, "maker_account": ev.maker_account,
            "maker_participant": maker.row["participant"] if maker else "",
            "taker_order_id": ev.taker_order_id, "taker_account": ev.taker_account,
            "taker_participant": taker.row["participant"] if taker else "",
        })
        for order, remaining, liquidity in ((maker, ev.maker_remaining, "maker"), (taker, ev.taker_remaining, "taker")):
            if order is None:
                continue
            r = order.row
            r["remaining"] = remaining
            r["traded_quantity"] += ev.quantity
            r["status"] = "FILLED" if remaining == 0 else "PARTIALLY_FILLED"
            r["last_seq"] = rec.seq
            if liquidity == "maker":
                order.displayed -= ev.quantity
                if order.displayed == 0:
                    order.reset_display()  # iceberg refill (or nothing left)
            else:
                order.reset_display()  # what rests of an aggressor is shown like a new order
            self._event(rec.seq, rec.hub_time_ns, order, "FILL" if remaining == 0 else "PARF",
                        traded_quantity=ev.quantity, trade_price=ev.price, trade_id=ev.trade_id,
                        passive_aggressive="PASV" if liquidity == "maker" else "AGRE")
            self.executions.append({
                "row_id": len(self.executions), "participant": r["participant"], "account": r["account"],
                "order_id": r["order_id"], "trade_id": trade_id, "seq": rec.seq, "hub_time_ns": rec.hub_time_ns,
                "symbol": r["symbol"], "side": r["side"], "price": ev.price, "quantity": ev.quantity,
                "liquidity": liquidity})

    def on_risk_cancel(self, rec, detail: dict) -> None:
        """A compact risk-cancel step (``risk_cancel`` ADMIN record): each listed order was cancelled
        by the venue's risk controls (CAMO, reason RISK) at the record's sequence number."""
        for order_id in risk_cancel_orders(detail):
            order = self.orders.get(order_id)
            if order is not None:
                order.row["remaining"] = order.displayed = 0
                self._event(rec.seq, rec.hub_time_ns, order, "CAMO", reason=int(CancelReason.RISK))
                self._close(order_id, "CANCELLED")

    def on_gateway_reject(self, rec) -> None:
        detail = rec.detail_json()
        self._event(rec.seq, rec.hub_time_ns, None, "REMO", participant=rec.participant,
                    client_order_id=str(detail.get("client_order_id", ""))[:64],
                    symbol=str(detail.get("symbol", ""))[:32], order_id=int(detail.get("order_id", 0) or 0),
                    reason=int(detail.get("reason", 0)))


def rebuild_projections(engine: Engine, store: LedgerStore | None = None) -> ProjectionReport:
    """Drop and re-derive every projection table from the ledger records."""
    started = time.perf_counter()
    store = store or LedgerStore(engine)
    report = ProjectionReport()
    builder = _Builder({})
    for _idx, _seq, payload, _leaf, _chain in store.iter_records():
        report.records += 1
        for rec in decode_all(payload):  # an entry block: the records it stands for
            if rec.record_type == RecordType.EVENT:
                builder.on_event(rec)
            elif rec.record_type == RecordType.COMMAND:
                builder.on_command(rec)
            elif rec.record_type == RecordType.GATEWAY_REJECT:
                builder.on_gateway_reject(rec)
            elif rec.record_type == RecordType.ADMIN and b'"risk_cancel"' in rec.detail:
                detail = rec.detail_json()
                if detail.get("action") == "risk_cancel":
                    builder.on_risk_cancel(rec, detail)
            elif rec.record_type == RecordType.CONFIG:
                config = json.loads(rec.detail)
                builder.instruments = {i["instrument_id"]: i for i in config.get("instruments", [])}
    orders = builder.finished + [o.row for o in builder.orders.values()]
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table, rows in ((proj_order, orders), (proj_order_event, builder.events),
                            (proj_trade, builder.trades), (proj_execution, builder.executions)):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start:start + 5000])
    report.orders, report.order_events = len(orders), len(builder.events)
    report.trades, report.executions = len(builder.trades), len(builder.executions)
    report.seconds = time.perf_counter() - started
    return report

