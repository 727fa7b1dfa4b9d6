"""Rate limits under bursts: 50 orders/s per participant and instrument (burst 50), per-session
message rate; exact refill timing, checked against a rational-arithmetic model."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.risk import RateLimitConfig, RiskConfig, RiskEngine, RiskReject
from tests.compliance.risk.conftest import AAPL, BUY, LIMIT, MS, MSFT, T0, new_engine

PX = {AAPL: 190_0000, MSFT: 420_0000}
_order_id = iter(range(1, 10**9))


def send(engine: RiskEngine, ts: int, iid: int = AAPL, pid: str = "p", session: str = "p/1") -> RiskReject | None:
    """Check one order and, if accepted, sequence it (which consumes the tokens)."""
    reject = engine.check_order(ts, pid, session, iid, BUY, LIMIT, PX[iid], 1)
    if reject is None:
        engine.on_order_entered(ts, pid, session, next(_order_id), iid, BUY, PX[iid], 1)
    return reject


def test_burst_50th_accepted_51st_rejected() -> None:
    engine = new_engine()
    results = [send(engine, T0) for _ in range(51)]
    assert results[:50] == [None] * 50
    assert results[50] == RiskReject.ORDER_RATE


def test_refill_timing_is_exact() -> None:
    """Given an empty bucket at T0, when time passes, then one token comes back every 20 ms exactly."""
    engine = new_engine()
    for _ in range(50):
        assert send(engine, T0) is None
    table = [  # (offset from T0, expected)
        (20 * MS - 1, RiskReject.ORDER_RATE),
        (20 * MS, None),  # one token refilled and used
        (20 * MS, RiskReject.ORDER_RATE),
        (40 * MS - 1, RiskReject.ORDER_RATE),
        (40 * MS, None),
    ]
    for offset, expected in table:
        assert send(engine, T0 + offset) == expected, offset


def test_rejected_orders_consume_nothing() -> None:
    engine = new_engine()
    for _ in range(50):
        send(engine, T0)
    for _ in range(1_000):  # a spammer keeps hammering: every attempt is refused, none is charged
        assert send(engine, T0 + 10 * MS) == RiskReject.ORDER_RATE
    assert send(engine, T0 + 20 * MS) is None


def test_buckets_are_per_participant_and_instrument() -> None:
    engine = new_engine()
    for _ in range(50):
        send(engine, T0)
    assert send(engine, T0) == RiskReject.ORDER_RATE
    assert send(engine, T0, iid=MSFT) is None  # same participant, other instrument
    assert send(engine, T0, pid="q", session="q/1") is None  # other participant


def test_idle_bucket_refills_only_to_the_burst() -> None:
    engine = new_engine()
    send(engine, T0)
    later = T0 + 3_600 * 1_000 * MS
    assert [send(engine, later) for _ in range(51)].count(None) == 50


def test_session_message_rate() -> None:
    cfg = RiskConfig(rates=RateLimitConfig(session_messages_per_second=5, session_burst=5))
    engine = new_engine(cfg)
    # the session bucket spans instruments
    results = [send(engine, T0, iid=AAPL if i % 2 else MSFT) for i in range(6)]
    assert results == [None] * 5 + [RiskReject.SESSION_RATE]
    assert send(engine, T0, session="p/2") is None  # a second session of the same participant has its own
    assert send(engine, T0 + 200 * MS - 1) == RiskReject.SESSION_RATE
    assert send(engine, T0 + 200 * MS) is None
    engine.on_session_closed(T0 + 200 * MS, "p/1")  # logout forgets the bucket
    assert send(engine, T0 + 200 * MS) is None


def test_replaces_count_against_both_buckets() -> None:
    engine = new_engine()
    engine.on_order_entered(T0, "p", "p/1", 5_000_000_000, AAPL, BUY, PX[AAPL], 1)
    for _ in range(49):
        engine.on_replace_entered(T0, "p", "p/1", 5_000_000_000)
    assert send(engine, T0) == RiskReject.ORDER_RATE


def _model_accepts(arrivals: list[int], rate: int, burst: int) -> list[bool]:
    tokens, last, out = Fraction(burst), None, []
    for t in arrivals:
        if last is not None:
            tokens = min(Fraction(burst), tokens + Fraction((t - last) * rate, 10**9))
        last = t
        ok = tokens >= 1
        if ok:
            tokens -= 1
        out.append(ok)
    return out


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.integers(min_value=0, max_value=60 * MS), min_size=1, max_size=300))
def test_bucket_matches_rational_model(gaps: list[int]) -> None:
    engine = new_engine()
    arrivals, t = [], T0
    for g in gaps:
        t += g
        arrivals.append(t)
    got = [send(engine, ts) is None for ts in arrivals]
    assert got == _model_accepts(arrivals, 50, 50)


def test_unary_orders_use_a_per_participant_session_bucket() -> None:
    cfg = RiskConfig(rates=RateLimitConfig(session_messages_per_second=2, session_burst=2))
    engine = new_engine(cfg)
    assert [send(engine, T0, session="") for _ in range(3)] == [None, None, RiskReject.SESSION_RATE]
    assert send(engine, T0, pid="q", session="") is None  # not shared with other participants
