"""The risk state digest feeds each resting order as bytes encoded once and cached on the order.
Those bytes must be exactly what feeding the values one by one through ``Digest`` gives (checkpoints
signed before the cache existed must still verify on recovery), and a cached encoding must follow
the order's price and remaining quantity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compliance.risk.state import Digest, OrderState, encoded_int, encoded_ints, encoded_text

INTS = st.integers(min_value=-(2**80), max_value=2**80)
TEXTS = st.text(max_size=40)


def _fed_one_by_one(oid: int, o: OrderState) -> bytes:
    """The digest of one order as ``state_digest`` computed it before the cache."""
    d = Digest()
    d.ints((oid, o.instrument_id, int(o.is_buy), o.price, o.remaining, int(o.persistent)))
    d.text(o.participant)
    d.text(o.session)
    return d.digest()


def _fed_encoded(raw: bytes) -> bytes:
    d = Digest()
    d.encoded(raw)
    return d.digest()


@given(st.lists(INTS, max_size=12), st.lists(TEXTS, max_size=4))
def test_the_encoders_produce_the_digest_stream(ints: list[int], texts: list[str]) -> None:
    fed = Digest()
    for x in ints:
        fed.int(x)
    fed.ints(ints)
    for t in texts:
        fed.text(t)
    raw = b"".join(encoded_int(x) for x in ints) + encoded_ints(tuple(ints)) + b"".join(map(encoded_text, texts))
    assert _fed_encoded(raw) == fed.digest()


@given(st.integers(1, 2**62), st.integers(1, 2**31), st.booleans(), INTS, st.integers(0, 2**62), TEXTS, TEXTS,
       st.booleans(), st.lists(st.tuples(INTS, st.integers(0, 2**62)), max_size=5))
def test_an_order_digests_as_before_through_every_change(oid, iid, is_buy, price, remaining, participant, session,
                                                         persistent, changes) -> None:
    o = OrderState(participant, iid, is_buy, price, remaining, session, persistent)
    assert _fed_encoded(o.digest_bytes(oid)) == _fed_one_by_one(oid, o)
    for new_price, new_remaining in changes:  # a replace or a fill moves them; the cache must follow
        o.price, o.remaining = new_price, new_remaining
        assert _fed_encoded(o.digest_bytes(oid)) == _fed_one_by_one(oid, o)
    assert o.digest_bytes(oid) is o.digest_bytes(oid), "unchanged: the cached bytes"


def test_the_encoding_of_a_known_order_is_pinned() -> None:
    # a checkpoint written by any version of the hub must verify in every later one
    o = OrderState("scalper-1", 101, True, 189_5000, 30, "sess-1", False)
    assert o.digest_bytes(7) == (
        b"\x00\x01\x06"  # six ints, each a 2-byte length and minimal big-endian two's complement
        + b"\x00\x01\x07" + b"\x00\x01\x65" + b"\x00\x01\x01" + b"\x00\x03" + (189_5000).to_bytes(3, "big")
        + b"\x00\x01\x1e" + b"\x00\x01\x00"
        + b"s\x00\x00\x00\x09scalper-1" + b"s\x00\x00\x00\x06sess-1")
