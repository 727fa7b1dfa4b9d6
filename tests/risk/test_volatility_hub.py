"""Volatility-scaled position limits through the hub: trades through the real order path on a fake
clock (one a second) feed the estimator; in a simulated spike the AAPL limit steps down to its
floor (0.25 x base) and back up after it, as the participant sees it (Account.GetRisk's view) and
as the pre-trade check applies it; every change is journaled as a risk event.

Config (as the engine tests): EWMA half-life 10 samples, 60 s of prior weight, AAPL base limit
10,000; inst-1 has its own base of 20,000 (its own events). Calm +-1 tick a second at 190 is about
29.5 % annualised, just under the 30 % reference: no change, no flapping.
"""

from __future__ import annotations

from compliance.risk import InstrumentRiskConfig, ParticipantRiskConfig, RiskConfig, RiskReject, VolatilityConfig
from matching.types import AssetClass
from tests.risk.support import AAPL, SEC, TICK, P, RiskHub, alternating_trades

VOL_CFG = RiskConfig(
    volatility=VolatilityConfig(half_life_samples=10, prior_weight_ns=60 * SEC,
                                reference_vol_bps=((AssetClass.EQUITY, 3_000), (AssetClass.FUTURE, 2_000),
                                                   (AssetClass.FX, 1_000), (AssetClass.CRYPTO, 8_000))),
    instruments=(InstrumentRiskConfig(instrument_id=AAPL, base_position_limit=10_000),),
    participants=(ParticipantRiskConfig(participant_id="inst-1", position_limits=((AAPL, 20_000),)),),
)


def _limit_events(rh: RiskHub, since: int, participant: str = "") -> list[dict]:
    return [e for e in rh.risk_events()[since:]
            if e["type"] == "position_limit_changed" and e["instrument_id"] == AAPL and e["participant_id"] == participant]


def _seen(rh: RiskHub, participant: str) -> tuple[int, int]:
    """(position limit, factor) of AAPL as Account.GetRisk shows it to the participant."""
    (lv,) = [lv for lv in rh.hub.risk_view(rh.who[participant]).limits if lv.instrument_id == AAPL]
    return lv.position_limit, lv.limit_factor_bps


def _probe(rh: RiskHub, qty: int) -> int:
    """inst-2 (flat, default base) tries to buy ``qty`` AAPL well below the market; cancelled if it rests."""
    sent = rh.buy("inst-2", "AAPL", P - 300 * TICK, qty)
    if sent.accepted:
        assert rh.cancel("inst-2", "AAPL", sent.order_id).accepted
    return sent.reason


def test_limit_shrinks_during_a_spike_and_recovers_after_it(make_hub) -> None:
    rh: RiskHub = make_hub(VOL_CFG)
    assert _seen(rh, "inst-2") == (10_000, 10_000) and _seen(rh, "inst-1") == (20_000, 10_000)

    # calm
    alternating_trades(rh, "AAPL", 120, P, P + TICK)
    assert _limit_events(rh, 0) == [], "calm trading changes no limit"
    assert _seen(rh, "inst-2") == (10_000, 10_000)
    assert _probe(rh, 10_000) == 0

    # rough (+-3 ticks a second, ~89 %), then a spike (+-2 % a second): the limit steps down to the floor
    mark = len(rh.risk_events())
    floor_seen_at = []
    alternating_trades(rh, "AAPL", 60, P, P + 3 * TICK)
    alternating_trades(rh, "AAPL", 30, P, 193_8000,
                       on_each=lambda i: floor_seen_at.append(i) if _seen(rh, "inst-2")[0] == 2_500 else None)
    down = _limit_events(rh, mark)
    assert len(down) >= 5, "the limit must step down"
    assert [e["limit"] for e in down] == sorted((e["limit"] for e in down), reverse=True)
    assert [e["vol_bps"] for e in down] == sorted(e["vol_bps"] for e in down)
    assert (down[-1]["factor_bps"], down[-1]["limit"]) == (2_500, 2_500)
    assert floor_seen_at and floor_seen_at[0] < 29, "the floor is reached during the spike, not after it"
    assert _seen(rh, "inst-2") == (2_500, 2_500)
    assert _seen(rh, "inst-1") == (5_000, 2_500)
    own = _limit_events(rh, mark, "inst-1")
    assert own and (own[-1]["base_limit"], own[-1]["limit"]) == (20_000, 5_000), "its own base gets its own event"
    # ... and the pre-trade check applies the shrunk limit at once
    assert _probe(rh, 2_501) == RiskReject.POSITION_LIMIT
    assert _probe(rh, 2_500) == 0

    # recovery: calm again, the spike decays (10-sample half-life), the limit steps back up
    mark = len(rh.risk_events())
    alternating_trades(rh, "AAPL", 400, P, P + TICK)
    up = _limit_events(rh, mark)
    assert len(up) >= 5
    assert [e["limit"] for e in up] == sorted(e["limit"] for e in up)
    assert up[-1]["limit"] == 10_000
    assert _seen(rh, "inst-2") == (10_000, 10_000) and _seen(rh, "inst-1") == (20_000, 10_000)
    assert _probe(rh, 10_000) == 0
    assert _probe(rh, 10_001) == RiskReject.POSITION_LIMIT
    rh.hub.risk.verify()
