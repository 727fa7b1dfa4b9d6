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
