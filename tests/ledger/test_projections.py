"""Projections are derived from the ledger alone and agree with the live hub."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from hub.client import HubClient
from hub.config import HubConfig
from hub.server import open_ledger_journal, run_server
from ledger.projections import proj_execution, proj_order, proj_order_event, proj_trade, rebuild_projections
from ledger.schema import connect, sqlite_url


def _run_flow(data_dir) -> dict:
    config = replace(HubConfig.default(), data_dir=str(data_dir)).with_network(port=0)
    with run_server(config, open_ledger_journal(config)) as (hub, port):
        scalper = HubClient(f"127.0.0.1:{port}", "dev-scalper-1")
        inst = HubClient(f"127.0.0.1:{port}", "dev-inst-1")
        iceberg = scalper.submit("AAPL", "buy", 100, 190_0000, display_quantity=20, client_order_id="ice")
        inst.submit("AAPL", "sell", 30, 190_0000, time_in_force="ioc", client_order_id="hit-1")
        scalper.replace("AAPL", iceberg.order_id, 190_0100, 50)
        scalper.submit("AAPL", "buy", 0, 190_0000, client_order_id="zero")  # engine reject
        scalper.submit("NOPE", "buy", 1, 1, client_order_id="unknown")  # gateway reject
        inst.submit("AAPL", "sell", 80, 189_0000, time_in_force="ioc", client_order_id="hit-2")
        day = inst.submit("MSFT", "sell", 5, 420_0000, time_in_force="day", client_order_id="day")
        operator = HubClient(f"127.0.0.1:{port}", "dev-operator")
        operator.end_of_session("MSFT")
        live = {"positions": {(p.account, p.symbol): p.net_quantity for c in (scalper, inst) for p in c.positions()},
                "iceberg": iceberg.order_id, "day": day.order_id}
        for c in (scalper, inst, operator):
            c.close()
    return live


def test_projections_rebuilt_from_the_ledger_match_what_the_hub_did(tmp_path):
    live = _run_flow(tmp_path)
    engine = connect(sqlite_url(tmp_path))
    report = rebuild_projections(engine)
    assert report.trades == 5 and report.executions == 10
    with engine.connect() as conn:
        orders = {r.client_order_id: r for r in conn.execute(sa.select(proj_order))}
        events = conn.execute(sa.select(proj_order_event).order_by(proj_order_event.c.row_id)).all()
        trades = conn.execute(sa.select(proj_trade)).all()
        executions = conn.execute(sa.select(proj_execution)).all()
    assert orders["ice"].status == "FILLED" and orders["ice"].traded_quantity == 80
    assert orders["hit-2"].status == "CANCELLED" and orders["hit-2"].traded_quantity == 50
    assert orders["zero"].status == "REJECTED"
    assert orders["day"].status == "EXPIRED"
    # The iceberg's displayed quantity follows its slices exactly; a price change resets priority.
    ice = [(e.event, e.remaining, e.displayed) for e in events if e.order_id == live["iceberg"]]
    assert ice == [("NEWO", 100, 20), ("PARF", 80, 20), ("PARF", 70, 10), ("REME", 50, 20),
                   ("PARF", 30, 20), ("PARF", 10, 10), ("FILL", 0, 0)]
    priority = [e.priority_ns for e in events if e.order_id == live["iceberg"]]
    assert priority[0] == priority[2] < priority[3] == priority[-1]
    codes = {(e.client_order_id or e.order_id, e.event) for e in events}
    assert ("unknown", "REMO") in codes and ("zero", "REMO") in codes
    assert (live["day"], "EXPI") in {(e.order_id, e.event) for e in events}
    assert {e.passive_aggressive for e in events if e.event in ("PARF", "FILL")} == {"PASV", "AGRE"}
    assert sum(t.quantity for t in trades) == 80
    # Net positions from the projected executions equal the hub's live positions.
    net: dict = {}
    for x in executions:
        key = (x.account, x.symbol)
        net[key] = net.get(key, 0) + (x.quantity if x.side == 1 else -x.quantity)
    assert {k: v for k, v in net.items() if v} == {k: v for k, v in live["positions"].items() if v}


def test_projections_can_be_rebuilt_from_scratch_identically(tmp_path):
    _run_flow(tmp_path)
    engine = connect(sqlite_url(tmp_path))
    rebuild_projections(engine)
    with engine.connect() as conn:
        first = conn.execute(sa.select(proj_order_event).order_by(proj_order_event.c.row_id)).all()
    rebuild_projections(engine)
    with engine.connect() as conn:
        second = conn.execute(sa.select(proj_order_event).order_by(proj_order_event.c.row_id)).all()
    assert first == second and len(first) > 10


def test_every_fill_carries_its_fee_in_the_ledger_as_on_the_execution_reports(tmp_path):
    import json

    from compliance.fees import FeeRecord
    from ledger.records import RecordType, decode
    from ledger.store import LedgerStore

    config = replace(HubConfig.default(), data_dir=str(tmp_path)).with_network(port=0)
    with run_server(config, open_ledger_journal(config)) as (_hub, port):
        maker, taker = HubClient(f"127.0.0.1:{port}", "dev-scalper-1"), HubClient(f"127.0.0.1:{port}", "dev-inst-1")
        maker.submit("AAPL", "sell", 300, 190_0000)
        hit = taker.submit("AAPL", "buy", 200, 190_0000, time_in_force="ioc")
        maker_reports = [r for r in maker.executions() if r.exec_type == 3]
        for c in (maker, taker):
            c.close()
    reported = {(r.order_id, r.fee) for r in hit.executions if r.exec_type == 3}
    reported |= {(r.order_id, r.fee) for r in maker_reports}
    store = LedgerStore(connect(sqlite_url(tmp_path)))
    recorded = []
    for _idx, _seq, payload, _leaf, _chain in store.iter_records():
        rec = decode(payload)
        if rec.record_type == RecordType.POST_TRADE:
            recorded += [FeeRecord.from_dict(f) for f in json.loads(rec.detail)["fees"]]
    assert len(recorded) == 2 and {f.role.value for f in recorded} == {"maker", "taker"}
    assert {f.fee for f in recorded} == {fee for _, fee in reported}
    # hand-computed: 200 AAPL at 190.00 = 38,000 USD; scalper maker -0.1 bp -> -38 cents (toward zero: -38);
    # institution taker 0.1 bp (38 cents) + 0.0030 USD/share (60 cents) = 98 cents
    assert sorted(f.fee for f in recorded) == [-38, 98]
