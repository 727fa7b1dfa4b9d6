"""The fee records' fast canonical JSON (what the hub journals for every trade) against the
generic encoder it replaces: byte for byte, for any record, and for a command's whole post-trade
record as the hub assembles it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compliance.fees import FeeRecord, FixedFeeCharge, Liquidity, Month
from hub.core import _post_trade_json
from ledger.records import canonical_json
from matching.types import AssetClass

_int = st.integers(-(2**70), 2**70)
_text = st.text(max_size=12)  # quotes, backslashes, controls, any code point: escaped as json escapes them

fee_records = st.builds(
    FeeRecord, trade_id=_int, hub_time_ns=_int, participant_id=_text, participant_class=_text,
    role=st.sampled_from(list(Liquidity)), instrument_id=_int, symbol=_text,
    asset_class=st.sampled_from(list(AssetClass)), currency=_text, quantity=_int, quantity_scale=_int,
    notional_raw=_int, notional_scale=_int, fee=_int, base_fee=_int, schedule_version=_text,
    tier=st.one_of(_int, st.booleans()))  # a bool (not an int) takes the generic path, same bytes

fixed_charges = st.builds(
    FixedFeeCharge, participant_id=_text, participant_class=_text,
    month=st.builds(Month, st.integers(2000, 2100), st.integers(1, 12)), hub_time_ns=_int, currency=_text,
    amount=_int, schedule_version=_text)


@given(fee_records)
def test_a_fee_record_writes_exactly_the_canonical_json_of_its_dict(record: FeeRecord) -> None:
    assert record.canonical_json().encode() == canonical_json(record.to_dict())


@given(st.lists(fee_records, max_size=4), st.lists(fixed_charges, max_size=2))
def test_a_commands_post_trade_record_is_the_canonical_json_of_its_fees(fees, fixed) -> None:
    fast = _post_trade_json([r.canonical_json() for r in fees], [canonical_json(c.to_dict()).decode() for c in fixed])
    assert fast == canonical_json({"fees": [r.to_dict() for r in fees], "fixed": [c.to_dict() for c in fixed]})
