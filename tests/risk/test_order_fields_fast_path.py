"""``validation.order_fields_refused`` (what the hub asks before each pre-trade risk check) must answer
exactly whether ``validation.check_new_order`` refuses the same fields with a valid id, account and
STP mode, for valid and invalid values alike, on every instrument."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching import validation
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import MAX_PRICE, NewOrder


@settings(max_examples=2_000, deadline=None)
@given(inst=st.sampled_from(DEFAULT_INSTRUMENTS), side=st.integers(-1, 3), order_type=st.integers(-1, 3),
       tif=st.integers(-1, 5), ticks=st.integers(-5, 5), off_tick=st.booleans(), huge=st.booleans(),
       lots=st.integers(-2, 12), lot_off=st.booleans(), display_lots=st.integers(-1, 12), post_only=st.integers(-1, 2),
       zero_price=st.booleans())
def test_fast_field_check_equals_the_engine_validation(inst, side, order_type, tif, ticks, off_tick, huge, lots, lot_off,
                                                       display_lots, post_only, zero_price) -> None:
    price = 0 if zero_price else inst.reference_price + ticks * inst.tick_size + (1 if off_tick else 0)
    if huge:
        price = MAX_PRICE + inst.tick_size
    qty = lots * inst.lot_size + (1 if lot_off else 0)
    if lots > 10:
        qty = inst.max_quantity + lots * inst.lot_size  # above the maximum
    display = display_lots * inst.lot_size
    probe = NewOrder(0, 0, inst.instrument_id, 1, 1, side, order_type, tif, price, qty, display, post_only, 0)
    expected = validation.check_new_order(probe, inst, 0) is not None
    assert validation.order_fields_refused(inst, side, order_type, tif, price, qty, display, post_only) == expected
