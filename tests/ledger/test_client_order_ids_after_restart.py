"""A client order id stays used across a restart, including one whose order the hub refused after
the gateway's checks (risk, a kill switch, a halt while held): live it is burned from the moment the
order passes them, and replay burns it again from the journaled reject. Before, a refused order's
id was free again after a restart, so the same id could name two different orders in the ledger."""

from __future__ import annotations

from dataclasses import replace

from hub.auth import Identity
from hub.config import HubConfig
from hub.core import GatewayReject, OrderSpec
from hub.server import open_ledger_journal, run_server
from hub.v1 import common_pb2 as cpb


def _order(price: int, client_order_id: str) -> OrderSpec:
    return OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, price, 10, client_order_id=client_order_id)


def test_ids_of_accepted_and_of_refused_orders_stay_used_after_a_restart(tmp_path) -> None:
    config = replace(HubConfig.default().with_network(host="127.0.0.1", port=0), data_dir=str(tmp_path))
    who = Identity.of(next(p for p in config.participants if p.id == "scalper-1"))
    other = Identity.of(next(p for p in config.participants if p.id == "scalper-2"))
    with run_server(config, open_ledger_journal(config), grace=0.5) as (hub, _):
        assert hub.submit_order(who, _order(189_0000, "kept"))[1] == 0
        refused = hub.submit_order(who, _order(100_0000, "refused"))  # far outside the price band
        assert refused[1] not in (0, GatewayReject.DUPLICATE_CLIENT_ORDER_ID)
        for client_order_id in ("kept", "refused"):
            assert hub.submit_order(who, _order(189_0000, client_order_id))[1] == GatewayReject.DUPLICATE_CLIENT_ORDER_ID

    with run_server(config, open_ledger_journal(config), grace=0.5) as (hub, _):
        for client_order_id in ("kept", "refused"):
            assert hub.submit_order(who, _order(189_0000, client_order_id))[1] == GatewayReject.DUPLICATE_CLIENT_ORDER_ID
        assert hub.submit_order(other, _order(189_0000, "refused"))[1] == 0  # ids are per participant
        assert hub.submit_order(who, _order(189_0000, "fresh"))[1] == 0


def test_an_id_whose_order_nothing_recorded_is_free_again_live_as_after_a_restart() -> None:
    """Refused before anything was journaled (the hub could not record): the id is given back, so
    a retry with it is accepted, live as after a restart. Before, it stayed burned live only."""
    import pytest

    from hub.core import Hub, HubUnavailableError
    from hub.journal import InMemoryJournal

    config = HubConfig.default()
    hub = Hub(config, InMemoryJournal())
    who = Identity.of(next(p for p in config.participants if p.id == "scalper-1"))
    hub.accepting = False
    with pytest.raises(HubUnavailableError):
        hub.submit_order(who, _order(189_0000, "retry-me"))
    hub.accepting = True
    assert hub.submit_order(who, _order(189_0000, "retry-me"))[1] == 0
    assert hub.submit_order(who, _order(189_0000, "retry-me"))[1] == GatewayReject.DUPLICATE_CLIENT_ORDER_ID
