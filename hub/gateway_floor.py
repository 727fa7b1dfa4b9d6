"""The hub's gateway without the hub behind it: a diagnostic floor for ``python -m hub.bench --diagnose``.

``GatewayOnlyHub`` is a ``Hub`` whose order entry and mass quotes answer at once with the replies
the echo floor sends (``hub.bench.EchoReplies``), entering nothing (its in-memory journal holds the
sessions' records only). Served by the real ``run_server`` (the gateway's event loop thread, its
services, session code, interceptors, commit path, checkpointer and collector policy), it measures
what the gateway costs over the bare echo; the hub with an in-memory journal then adds the hub's
own work, and the hub on its ledger the ledger's. (A mass quote's quotes are rebuilt as messages
for ``EchoReplies``: a fraction of a microsecond per quote, counted as the gateway's.) Never part
of a real deployment: it answers orders it did not enter.
"""

from __future__ import annotations

from hub.auth import Identity
from hub.core import EntryResult, Hub, MassQuoteResult, OrderSpec, Outcome, QuoteSpec
from hub.v1 import order_entry_pb2 as oepb


class GatewayOnlyHub(Hub):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from hub.bench import EchoReplies  # the bench imports this module: imported when first served

        self._replies = EchoReplies()

    def _ticket(self) -> int:
        # A ticket to wait for, as the hub's answers have (already committed: the journal is in
        # memory), so replies take the gateway's commit path too (``LoopCommitter``).
        return max(self.last_ticket, 1)

    def enter_order(self, who: Identity, spec: OrderSpec, session_id: str = "") -> EntryResult:
        seq, ts, reports = self._replies.order_reports(spec.client_order_id, spec.symbol, spec.side, spec.price,
                                                       spec.quantity)
        return Outcome(seq, ts, [], reports, ticket=self._ticket()), 0, ""

    def enter_mass_quote(self, who: Identity, quotes: list[QuoteSpec], account: int,
                         session_id: str = "") -> MassQuoteResult:
        ack = self._replies.mass_quote_ack(oepb.MassQuoteRequest(account=account, quotes=[
            oepb.Quote(symbol=q.symbol, bid_price=q.bid_price, bid_quantity=q.bid_quantity, ask_price=q.ask_price,
                       ask_quantity=q.ask_quantity) for q in quotes]))
        rows = [(q.symbol, q.bid_order_id, 0, q.ask_order_id, 0) for q in ack.quotes]
        return list(ack.executions), rows, 0, "", self._ticket()
