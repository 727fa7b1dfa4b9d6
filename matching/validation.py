"""Static order checks, in the exact order both engines apply them (first failure wins).

These need only the command and the instrument, never the book. The Cython engine carries a C
transcription of the same sequence; the differential tests hold the two to identical rejects.
"""

from __future__ import annotations

from matching.instruments import Instrument
from matching.types import (
    MAX_PRICE,
    NewOrder,
    OrderType,
    RejectReason,
    Replace,
    Side,
    StpMode,
    TimeInForce,
)

_SIDES = frozenset(int(s) for s in Side)
_TYPES = frozenset(int(t) for t in OrderType)
_TIFS = frozenset(int(t) for t in TimeInForce)
_STP_MODES = frozenset(int(m) for m in StpMode)
_IMMEDIATE = frozenset((TimeInForce.IOC, TimeInForce.FOK))
_MARKET = int(OrderType.MARKET)


def _check_quantity(quantity: int, inst: Instrument) -> RejectReason | None:
    if quantity <= 0:
        return RejectReason.INVALID_QUANTITY
    if quantity % inst.lot_size:
        return RejectReason.QUANTITY_NOT_LOT_MULTIPLE
    if quantity < inst.min_quantity:
        return RejectReason.QUANTITY_BELOW_MIN
    if quantity > inst.max_quantity:
        return RejectReason.QUANTITY_ABOVE_MAX
    return None


def _check_limit_price(price: int, inst: Instrument) -> RejectReason | None:
    if price <= 0 or price > MAX_PRICE:
        return RejectReason.INVALID_PRICE
    if price % inst.tick_size:
        return RejectReason.PRICE_NOT_ON_TICK
    return None


def _exceeds_notional(price: int, quantity: int, inst: Instrument) -> bool:
    # Same form as the C code (no int64 overflow there): qty*mult > cap // price.
    return quantity * inst.contract_multiplier > inst.max_notional_raw // price


def check_new_order(cmd: NewOrder, inst: Instrument | None, last_order_id: int) -> RejectReason | None:
    if inst is None:
        return RejectReason.UNKNOWN_INSTRUMENT
    if cmd.order_id <= 0:
        return RejectReason.INVALID_ORDER_ID
    if cmd.order_id <= last_order_id:
        return RejectReason.DUPLICATE_ORDER_ID
    if cmd.account <= 0:
        return RejectReason.INVALID_ACCOUNT
    if cmd.side not in _SIDES:
        return RejectReason.INVALID_SIDE
    if cmd.order_type not in _TYPES:
        return RejectReason.INVALID_ORDER_TYPE
    is_market = cmd.order_type == OrderType.MARKET
    if cmd.time_in_force not in _TIFS or (is_market and cmd.time_in_force not in _IMMEDIATE):
        return RejectReason.INVALID_TIME_IN_FORCE
    if cmd.stp_mode not in _STP_MODES:
        return RejectReason.INVALID_STP_MODE
    if cmd.post_only not in (0, 1) or (cmd.post_only and (is_market or cmd.time_in_force in _IMMEDIATE)):
        return RejectReason.POST_ONLY_NOT_ALLOWED
    reason = _check_quantity(cmd.quantity, inst)
    if reason is not None:
        return reason
    if is_market:
        if cmd.price != 0:
            return RejectReason.INVALID_PRICE
        notional_price = inst.reference_price  # market orders are capped at the reference price
    else:
        reason = _check_limit_price(cmd.price, inst)
        if reason is not None:
            return reason
        notional_price = cmd.price
    if _exceeds_notional(notional_price, cmd.quantity, inst):
        return RejectReason.NOTIONAL_ABOVE_MAX
    d = cmd.display_quantity
    if d != 0 and (
        d < 0
        or is_market
        or cmd.time_in_force in _IMMEDIATE
        or d >= cmd.quantity
        or d % inst.lot_size
        or d < inst.min_quantity
    ):
        return RejectReason.INVALID_DISPLAY_QUANTITY
    return None


def order_fields_refused(inst: Instrument, side: int, order_type: int, time_in_force: int, price: int,
                         quantity: int, display_quantity: int, post_only: int) -> bool:
    """Whether ``check_new_order`` refuses a new order with these fields and a valid id, account and
    STP mode: the same checks without building a command (the hub asks it before every pre-trade risk
    check, and only the yes/no matters there). The property tests hold it to ``check_new_order``."""
    if side not in _SIDES or order_type not in _TYPES or time_in_force not in _TIFS:
        return True
    is_market = order_type == _MARKET
    immediate = time_in_force in _IMMEDIATE
    if (is_market and not immediate) or post_only not in (0, 1) or (post_only and (is_market or immediate)):
        return True
    if quantity <= 0 or quantity % inst.lot_size or quantity < inst.min_quantity or quantity > inst.max_quantity:
        return True
    if is_market:
        if price != 0:
            return True
        price = inst.reference_price  # market orders are capped at the reference price
    elif price <= 0 or price > MAX_PRICE or price % inst.tick_size:
        return True
    if quantity * inst.contract_multiplier > inst.max_notional_raw // price:
        return True
    d = display_quantity
    return d != 0 and (d < 0 or is_market or immediate or d >= quantity or d % inst.lot_size or d < inst.min_quantity)


def check_replace(cmd: Replace, inst: Instrument) -> RejectReason | None:
    """Checks on the new values; the caller has already found the order and its owner."""
    reason = _check_quantity(cmd.quantity, inst)
    if reason is not None:
        return reason
    reason = _check_limit_price(cmd.price, inst)
    if reason is not None:
        return reason
    if _exceeds_notional(cmd.price, cmd.quantity, inst):
        return RejectReason.NOTIONAL_ABOVE_MAX
    return None
