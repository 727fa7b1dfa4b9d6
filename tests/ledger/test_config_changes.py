"""A hub restarted with participants added or removed replays its ledger (fees included) and goes
on: the fee payers in force follow the ledger's CONFIG records, so a monthly fixed fee is charged
from the same point live and on replay. Before, the first replayed trade billed the new
participant's fixed fee, the fees differed from the ledger's and the hub refused to start."""

from __future__ import annotations

from dataclasses import replace

from hub.auth import Identity
from hub.config import HubConfig, ParticipantClass, ParticipantConfig, Role, hash_token
from hub.core import OrderSpec
from hub.server import open_ledger_journal, run_server
from hub.v1 import common_pb2 as cpb
from ledger.entries import decode_all
from ledger.records import RecordType


def _trade(hub, config: HubConfig) -> None:
    ids = {p.id: Identity.of(p) for p in config.participants}
    assert hub.submit_order(ids["scalper-1"], OrderSpec("AAPL", cpb.SELL, cpb.LIMIT, cpb.GTC, 190_0000, 10))[1] == 0
    assert hub.submit_order(ids["inst-1"], OrderSpec("AAPL", cpb.BUY, cpb.LIMIT, cpb.GTC, 190_0000, 10))[1] == 0


def _charged(hub) -> list[str]:
    return sorted(c.participant_id for c in hub._fixed_charges)


def test_participants_added_and_removed_across_restarts_replay_and_are_billed_from_then_on(tmp_path) -> None:
    base = replace(HubConfig.default().with_network(host="127.0.0.1", port=0), data_dir=str(tmp_path))
    with run_server(base, open_ledger_journal(base), grace=0.5) as (hub, _):
        _trade(hub, base)
        first = _charged(hub)
    assert first == ["inst-1", "inst-2"]  # the institutions pay a monthly fixed fee

    newcomer = ParticipantConfig(id="inst-3", role=Role.PARTICIPANT, participant_class=ParticipantClass.INSTITUTION,
                                 token_sha256=hash_token("dev-inst-3"), accounts=(2009,))
    grown = replace(base, participants=base.participants + (newcomer,)).validated()
    with run_server(grown, open_ledger_journal(grown), grace=0.5) as (hub, _):
        assert _charged(hub) == first  # replayed exactly: nobody billed before they existed
        _trade(hub, grown)
        assert _charged(hub) == ["inst-1", "inst-2", "inst-3"]  # billed from its arrival on
        digest = hub.state_digest_bytes()

    with run_server(grown, open_ledger_journal(grown), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest

    shrunk = replace(grown, participants=tuple(p for p in grown.participants if p.id != "inst-2")).validated()
    with run_server(shrunk, open_ledger_journal(shrunk), grace=0.5) as (hub, _):
        assert _charged(hub) == ["inst-1", "inst-2", "inst-3"]  # what was charged stays charged
        assert "inst-2" not in hub.fees._classes  # and no more from here


def _records(hub, action: str) -> list[dict]:
    hub.journal.flush()
    return [rec.detail_json() for _idx, _seq, payload, _leaf, _chain in hub.journal.iter_records()
            for rec in decode_all(payload)
            if rec.record_type == RecordType.ADMIN and rec.detail_json().get("action") == action]


def test_a_removed_participant_that_traded_replays_and_its_resting_orders_are_cancelled(tmp_path) -> None:
    """Before, replay looked up a removed participant's class in the new config: KeyError, and the
    hub could not restart. Its resting orders are cancelled at the restart (nobody can reach them
    any more), after a journaled record that says why."""
    base = replace(HubConfig.default().with_network(host="127.0.0.1", port=0), data_dir=str(tmp_path))
    ids = {p.id: Identity.of(p) for p in base.participants}
    with run_server(base, open_ledger_journal(base), grace=0.5) as (hub, _):
        _trade(hub, base)  # scalper-1 sold, inst-1 bought
        outcome, reason, _ = hub.submit_order(ids["scalper-1"], OrderSpec("AAPL", cpb.SELL, cpb.LIMIT, cpb.GTC,
                                                                          191_0000, 7))
        assert reason == 0
        (resting,) = hub._orders_of["scalper-1"]
        assert hub.resting_count() == 1

    shrunk = replace(base, participants=tuple(p for p in base.participants if p.id != "scalper-1")).validated()
    with run_server(shrunk, open_ledger_journal(shrunk), grace=0.5) as (hub, _):
        assert resting not in hub._orders and hub.resting_count() == 0
        assert _records(hub, "participant_removed") == [{"action": "participant_removed", "participant": "scalper-1",
                                                         "orders": 1}]
        sold = sum(fee.quantity for fee in hub._fee_records if fee.participant_id == "scalper-1")
        assert sold == 10  # its history is kept, fees included
        digest = hub.state_digest_bytes()

    with run_server(shrunk, open_ledger_journal(shrunk), grace=0.5) as (hub, _):
        assert hub.state_digest_bytes() == digest  # replays, cancels included; nothing more to cancel
        assert len(_records(hub, "participant_removed")) == 1


def test_a_participant_whose_class_changed_replays_with_the_class_it_had_then(tmp_path) -> None:
    """A scalper's order carries the scalper's minimum resting time; after a restart that makes it an
    institution, the replayed order still carries it (the class of the CONFIG record in force)."""
    base = replace(HubConfig.default().with_network(host="127.0.0.1", port=0), data_dir=str(tmp_path))
    ids = {p.id: Identity.of(p) for p in base.participants}
    with run_server(base, open_ledger_journal(base), grace=0.5) as (hub, _):
        assert hub.submit_order(ids["scalper-1"], OrderSpec("AAPL", cpb.SELL, cpb.LIMIT, cpb.GTC, 191_0000, 7))[1] == 0
        ((order_id, live),) = hub._orders.items()
        assert live.min_rest_ns > 0

    changed = replace(base, participants=tuple(
        replace(p, participant_class=ParticipantClass.INSTITUTION) if p.id == "scalper-1" else p
        for p in base.participants)).validated()
    with run_server(changed, open_ledger_journal(changed), grace=0.5) as (hub, _):
        assert hub._orders[order_id].min_rest_ns == live.min_rest_ns
        assert hub.class_of("scalper-1") == ParticipantClass.INSTITUTION  # from the restart on
