"""Bad input: every static check and every book-dependent reject, on both engines.

Each case sends one command to an engine holding a small book and expects exactly one
``Rejected`` carrying the right reason and echoing the command, with the engine unchanged
(digest, last order id, last trade id).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import NamedTuple

import pytest

from matching.instruments import DEFAULT_INSTRUMENTS, by_asset_class
from matching.types import (
    COMMAND_KIND,
    MAX_PRICE,
    RECORD_SIZE,
    RECORD_SLOTS,
    AssetClass,
    Command,
    EndOfSession,
    MassCancel,
    NewOrder,
    Rejected,
    RejectReason,
    decode_events,
    encode_command,
    encode_commands,
)
from tests.support import BUY, DAY, FOK, GTC, IOC, LIMIT, MARKET, SELL, Commands, assert_events

R = RejectReason
INSTRUMENTS = by_asset_class(DEFAULT_INSTRUMENTS)
FIRST = {ac: insts[0] for ac, insts in INSTRUMENTS.items()}  # AAPL, ESZ6, EURUSD, BTC-USD

#: An equity whose lot (10) is smaller than its minimum (100), so "below min" is reachable.
LOTTED = dataclasses.replace(FIRST[AssetClass.EQUITY], instrument_id=9, symbol="LOTTED", lot_size=10,
                             min_quantity=100, max_quantity=10_000)
ENGINE_INSTRUMENTS = {**INSTRUMENTS, AssetClass.EQUITY: (*INSTRUMENTS[AssetClass.EQUITY], LOTTED)}

EQ, FUT, FX, CR = AssetClass.EQUITY, AssetClass.FUTURE, AssetClass.FX, AssetClass.CRYPTO
AAPL_REF = FIRST[EQ].reference_price  # 190_0000, tick 100
EUR_REF = FIRST[FX].reference_price  # 1_08500, tick 1, lot 1000
BTC_REF = FIRST[CR].reference_price  # 95_000_00, tick 1, lot 10_000


def seeded(make_engine, asset_class: AssetClass):
    """An engine with a bid (order 1, account 1) and an offer (order 2, account 2) one tick either
    side of the first instrument's reference price; returns the engine and a command builder."""
    inst = FIRST[asset_class]
    engine = make_engine(asset_class, ENGINE_INSTRUMENTS[asset_class])
    cmds = Commands(inst.instrument_id)
    qty = inst.lot_size * 10
    for cmd in (cmds.new(BUY, inst.reference_price - inst.tick_size, qty, account=1),
                cmds.new(SELL, inst.reference_price + inst.tick_size, qty, account=2)):
        assert [type(e).__name__ for e in engine.process(cmd)][0] == "Accepted"
    return engine, cmds


class Case(NamedTuple):
    name: str
    asset_class: AssetClass
    build: Callable[[Commands], Command]
    reason: RejectReason


def new(asset_class: AssetClass = EQ, **overrides) -> Callable[[Commands], Command]:
    """A new order that is valid (and would rest) unless ``overrides`` spoil it."""
    inst = FIRST[asset_class]
    fields = dict(side=BUY, price=inst.reference_price, quantity=inst.lot_size * 5, account=3)
    fields.update(overrides)
    side, price, quantity = fields.pop("side"), fields.pop("price"), fields.pop("quantity")
    return lambda c: c.new(side, price, quantity, **fields)


def market(asset_class: AssetClass = EQ, **overrides) -> Callable[[Commands], Command]:
    return new(asset_class, **{"order_type": MARKET, "tif": IOC, "price": 0, **overrides})


NEW_ORDER_CASES = [
    # quantity
    Case("zero quantity", EQ, new(quantity=0), R.INVALID_QUANTITY),
    Case("negative quantity", EQ, new(quantity=-5), R.INVALID_QUANTITY),
    Case("fx quantity not a lot multiple", FX, new(FX, quantity=1_500), R.QUANTITY_NOT_LOT_MULTIPLE),
    Case("crypto quantity not a lot multiple", CR, new(CR, quantity=15_000), R.QUANTITY_NOT_LOT_MULTIPLE),
    Case("quantity below min", EQ, new(instrument_id=9, quantity=90), R.QUANTITY_BELOW_MIN),
    Case("quantity above max", EQ, new(quantity=1_000_001), R.QUANTITY_ABOVE_MAX),
    Case("fx quantity above max", FX, new(FX, quantity=100_001_000), R.QUANTITY_ABOVE_MAX),
    # price
    Case("price off tick", EQ, new(price=AAPL_REF + 50), R.PRICE_NOT_ON_TICK),
    Case("future price off tick", FUT, new(FUT, price=6000_10), R.PRICE_NOT_ON_TICK),
    Case("zero limit price", EQ, new(price=0), R.INVALID_PRICE),
    Case("negative limit price", EQ, new(price=-AAPL_REF), R.INVALID_PRICE),
    Case("limit price above MAX_PRICE", EQ, new(price=MAX_PRICE + 100), R.INVALID_PRICE),
    Case("market order with a price", EQ, market(price=AAPL_REF), R.INVALID_PRICE),
    # notional: AAPL cap is 50M USD = 5e11 raw, so 263_157 @ 190.0000 is the largest limit order
    Case("limit notional above max", EQ, new(quantity=263_158), R.NOTIONAL_ABOVE_MAX),
    Case("market notional above max at reference price", EQ, market(quantity=263_158), R.NOTIONAL_ABOVE_MAX),
    Case("notional at MAX_PRICE", EQ, new(price=MAX_PRICE, quantity=1), R.NOTIONAL_ABOVE_MAX),
    # ESZ6: 2e11 raw cap // 100_000.00 = 20_000 >= qty * multiplier 50, so 401 contracts is too many
    Case("future notional counts the multiplier", FUT, new(FUT, price=100_000_00, quantity=401),
         R.NOTIONAL_ABOVE_MAX),
    # BTC-USD: 10M USD cap = 1e17 raw; at 200_000.00 that allows 50 BTC (below the 100 BTC max quantity)
    Case("crypto notional above max", CR, new(CR, price=200_000_00, quantity=50_00010000), R.NOTIONAL_ABOVE_MAX),
    # instrument
    Case("unknown instrument", EQ, new(instrument_id=99), R.UNKNOWN_INSTRUMENT),
    Case("fx instrument sent to the equity engine", EQ, new(instrument_id=5, price=EUR_REF, quantity=1_000),
         R.UNKNOWN_INSTRUMENT),
    Case("equity instrument sent to the crypto engine", CR, new(CR, instrument_id=1, price=AAPL_REF,
                                                                quantity=10_000), R.UNKNOWN_INSTRUMENT),
    Case("instrument id 0", EQ, new(instrument_id=0), R.UNKNOWN_INSTRUMENT),
    # order id
    Case("order id equal to the last accepted", EQ, new(order_id=2), R.DUPLICATE_ORDER_ID),
    Case("order id below the last accepted", EQ, new(order_id=1), R.DUPLICATE_ORDER_ID),
    Case("order id zero", EQ, new(order_id=0), R.INVALID_ORDER_ID),
    Case("negative order id", EQ, new(order_id=-7), R.INVALID_ORDER_ID),
    # enumerations
    Case("account zero", EQ, new(account=0), R.INVALID_ACCOUNT),
    Case("negative account", EQ, new(account=-1), R.INVALID_ACCOUNT),
    Case("side zero", EQ, new(side=0), R.INVALID_SIDE),
    Case("side three", EQ, new(side=3), R.INVALID_SIDE),
    Case("order type zero", EQ, new(order_type=0), R.INVALID_ORDER_TYPE),
    Case("order type three", EQ, new(order_type=3), R.INVALID_ORDER_TYPE),
    Case("time in force zero", EQ, new(tif=0), R.INVALID_TIME_IN_FORCE),
    Case("time in force five", EQ, new(tif=5), R.INVALID_TIME_IN_FORCE),
    Case("market GTC", EQ, market(tif=GTC), R.INVALID_TIME_IN_FORCE),
    Case("market DAY", EQ, market(tif=DAY), R.INVALID_TIME_IN_FORCE),
    Case("stp mode minus one", EQ, new(stp=-1), R.INVALID_STP_MODE),
    Case("stp mode four", EQ, new(stp=4), R.INVALID_STP_MODE),
    Case("post only two", EQ, new(post_only=2), R.POST_ONLY_NOT_ALLOWED),
    Case("post only minus one", EQ, new(post_only=-1), R.POST_ONLY_NOT_ALLOWED),
    Case("post only IOC", EQ, new(post_only=1, tif=IOC), R.POST_ONLY_NOT_ALLOWED),
    Case("post only FOK", EQ, new(post_only=1, tif=FOK), R.POST_ONLY_NOT_ALLOWED),
    Case("post only market", EQ, market(post_only=1), R.POST_ONLY_NOT_ALLOWED),
    # iceberg display
    Case("negative display", EQ, new(display=-1), R.INVALID_DISPLAY_QUANTITY),
    Case("display equal to quantity", EQ, new(quantity=50, display=50), R.INVALID_DISPLAY_QUANTITY),
    Case("display above quantity", EQ, new(quantity=50, display=60), R.INVALID_DISPLAY_QUANTITY),
    Case("display on IOC", EQ, new(quantity=50, display=10, tif=IOC), R.INVALID_DISPLAY_QUANTITY),
    Case("display on FOK", EQ, new(quantity=50, display=10, tif=FOK), R.INVALID_DISPLAY_QUANTITY),
    Case("display on market", EQ, market(quantity=50, display=10), R.INVALID_DISPLAY_QUANTITY),
    Case("display not a lot multiple", FX, new(FX, quantity=5_000, display=1_500), R.INVALID_DISPLAY_QUANTITY),
    Case("display below min", EQ, new(instrument_id=9, quantity=1_000, display=50), R.INVALID_DISPLAY_QUANTITY),
    # first failing check wins
    Case("unknown instrument before everything", EQ,
         new(instrument_id=99, order_id=0, account=0, side=9, quantity=0), R.UNKNOWN_INSTRUMENT),
    Case("order id before account", EQ, new(order_id=0, account=0), R.INVALID_ORDER_ID),
    Case("duplicate id before account", EQ, new(order_id=2, account=0), R.DUPLICATE_ORDER_ID),
    Case("account before side", EQ, new(account=0, side=0), R.INVALID_ACCOUNT),
    Case("side before type", EQ, new(side=0, order_type=0), R.INVALID_SIDE),
    Case("type before time in force", EQ, new(order_type=0, tif=0), R.INVALID_ORDER_TYPE),
    Case("time in force before stp", EQ, new(tif=0, stp=9), R.INVALID_TIME_IN_FORCE),
    Case("stp before post only", EQ, new(stp=9, post_only=5), R.INVALID_STP_MODE),
    Case("post only before quantity", EQ, new(post_only=5, quantity=0), R.POST_ONLY_NOT_ALLOWED),
    Case("quantity before price", EQ, new(quantity=0, price=0), R.INVALID_QUANTITY),
    Case("lot before min", EQ, new(instrument_id=9, quantity=15), R.QUANTITY_NOT_LOT_MULTIPLE),
    Case("lot before tick", EQ, new(instrument_id=9, quantity=105, price=AAPL_REF + 1), R.QUANTITY_NOT_LOT_MULTIPLE),
    Case("tick before notional", EQ, new(price=AAPL_REF + 1, quantity=900_000), R.PRICE_NOT_ON_TICK),
    Case("notional before display", EQ, new(quantity=300_000, display=-1), R.NOTIONAL_ABOVE_MAX),
    Case("market price before notional", EQ, market(price=1, quantity=300_000), R.INVALID_PRICE),
    # against the book (seeded bid at ref - tick, offer at ref + tick, 10 lots each)
    Case("post only buy at the offer", EQ, new(price=AAPL_REF + 100, post_only=1), R.POST_ONLY_WOULD_CROSS),
    Case("post only sell at the bid", EQ, new(side=SELL, price=AAPL_REF - 100, post_only=1),
         R.POST_ONLY_WOULD_CROSS),
    Case("post only iceberg through the offer", FX,
         new(FX, price=EUR_REF + 5, quantity=5_000, display=1_000, post_only=1), R.POST_ONLY_WOULD_CROSS),
    Case("fok larger than the offer", EQ, new(price=AAPL_REF + 100, quantity=11, tif=FOK), R.FOK_NOT_FILLABLE),
    Case("fok limit below the offer", EQ, new(price=AAPL_REF, quantity=1, tif=FOK), R.FOK_NOT_FILLABLE),
    Case("market fok larger than the bid", CR, market(CR, side=SELL, quantity=110_000, tif=FOK),
         R.FOK_NOT_FILLABLE),
]

CANCEL_REPLACE_CASES = [
    Case("cancel unknown order", EQ, lambda c: c.cancel(77, account=1), R.UNKNOWN_ORDER),
    Case("cancel another account's order", EQ, lambda c: c.cancel(1, account=2), R.UNKNOWN_ORDER),
    Case("cancel on the other instrument", EQ, lambda c: c.cancel(1, account=1, instrument_id=2), R.UNKNOWN_ORDER),
    Case("cancel on an unknown instrument", EQ, lambda c: c.cancel(1, account=1, instrument_id=99),
         R.UNKNOWN_INSTRUMENT),
    Case("replace unknown order", EQ, lambda c: c.replace(77, AAPL_REF, 5, account=1), R.UNKNOWN_ORDER),
    Case("replace another account's order", EQ, lambda c: c.replace(1, AAPL_REF, 5, account=2), R.UNKNOWN_ORDER),
    Case("replace unknown order with bad values", EQ, lambda c: c.replace(77, 1, 0, account=1), R.UNKNOWN_ORDER),
    Case("replace on an unknown instrument", EQ, lambda c: c.replace(1, AAPL_REF, 5, account=1, instrument_id=99),
         R.UNKNOWN_INSTRUMENT),
    Case("replace to zero quantity", EQ, lambda c: c.replace(1, AAPL_REF, 0, account=1), R.INVALID_QUANTITY),
    Case("replace to quantity above max", EQ, lambda c: c.replace(1, AAPL_REF, 1_000_001, account=1),
         R.QUANTITY_ABOVE_MAX),
    Case("replace to fx quantity off lot", FX, lambda c: c.replace(1, EUR_REF, 1_500, account=1),
         R.QUANTITY_NOT_LOT_MULTIPLE),
    Case("replace to price off tick", EQ, lambda c: c.replace(1, AAPL_REF + 1, 5, account=1), R.PRICE_NOT_ON_TICK),
    Case("replace to price zero", EQ, lambda c: c.replace(1, 0, 5, account=1), R.INVALID_PRICE),
    Case("replace to price above MAX_PRICE", EQ, lambda c: c.replace(1, MAX_PRICE + 100, 5, account=1),
         R.INVALID_PRICE),
    Case("replace to notional above max", EQ, lambda c: c.replace(1, AAPL_REF, 263_158, account=1),
         R.NOTIONAL_ABOVE_MAX),
    Case("replace quantity checked before price", EQ, lambda c: c.replace(1, 0, 0, account=1), R.INVALID_QUANTITY),
    Case("mass cancel account zero", EQ, lambda c: c.mass_cancel(0), R.INVALID_ACCOUNT),
    Case("mass cancel negative account on one instrument", EQ, lambda c: c.mass_cancel(-3, 1), R.INVALID_ACCOUNT),
    Case("mass cancel unknown instrument", EQ, lambda c: c.mass_cancel(1, 99), R.UNKNOWN_INSTRUMENT),
    Case("mass cancel instrument of another engine", FX, lambda c: c.mass_cancel(1, 1), R.UNKNOWN_INSTRUMENT),
    Case("mass cancel unknown instrument before account", EQ, lambda c: c.mass_cancel(0, 99), R.UNKNOWN_INSTRUMENT),
    Case("end of session unknown instrument", EQ, lambda c: c.end_of_session(99), R.UNKNOWN_INSTRUMENT),
    Case("end of session instrument of another engine", CR, lambda c: c.end_of_session(3), R.UNKNOWN_INSTRUMENT),
]


def expected_reject(cmd: Command, reason: RejectReason) -> Rejected:
    """What the reject must echo: instrument, order id and account of the command (0 where it has none)."""
    return Rejected(cmd.seq, cmd.instrument_id, getattr(cmd, "order_id", 0), getattr(cmd, "account", 0),
                    reason, COMMAND_KIND[type(cmd)])


@pytest.mark.parametrize("case", NEW_ORDER_CASES + CANCEL_REPLACE_CASES, ids=lambda c: c.name)
def test_bad_command_is_rejected_with_its_reason_and_changes_nothing(make_engine, case: Case):
    engine, cmds = seeded(make_engine, case.asset_class)
    before = (engine.digest(), engine.last_order_id, engine.last_trade_id)
    cmd = case.build(cmds)
    assert_events(engine.process(cmd), [expected_reject(cmd, case.reason)])
    assert (engine.digest(), engine.last_order_id, engine.last_trade_id) == before
    assert engine.last_seq == cmd.seq


def test_orders_exactly_at_the_notional_cap_are_accepted(make_engine):
    engine, cmds = seeded(make_engine, EQ)
    for cmd in (new(quantity=263_157)(cmds), market(quantity=263_157)(cmds)):
        assert type(engine.process(cmd)[0]).__name__ == "Accepted"
    engine, cmds = seeded(make_engine, CR)
    cmd = new(CR, price=200_000_00, quantity=50_00000000)(cmds)
    assert type(engine.process(cmd)[0]).__name__ == "Accepted"
    engine, cmds = seeded(make_engine, FUT)
    cmd = new(FUT, price=100_000_00, quantity=400)(cmds)
    assert type(engine.process(cmd)[0]).__name__ == "Accepted"


def test_every_reject_case_gives_the_same_reason_inside_one_packed_batch(make_engine):
    engine, cmds = seeded(make_engine, EQ)
    commands = [case.build(cmds) for case in NEW_ORDER_CASES + CANCEL_REPLACE_CASES if case.asset_class == EQ]
    digest = engine.digest()
    out = decode_events(engine.process_packed(encode_commands(commands)))
    assert [e.reason for e in out] == [
        c.reason for c in NEW_ORDER_CASES + CANCEL_REPLACE_CASES if c.asset_class == EQ]
    assert engine.digest() == digest


# -- PACKED INPUT -------------------------------------------------------------------------------


def record(*slots: int) -> bytes:
    return struct.pack(f"<{RECORD_SLOTS}q", *slots, *[0] * (RECORD_SLOTS - len(slots)))


@pytest.mark.parametrize("kind", [0, 6, -1, 2**40])
def test_unknown_command_kind_is_rejected_as_unknown_command(make_engine, kind):
    engine, _ = seeded(make_engine, EQ)
    digest = engine.digest()
    out = decode_events(engine.process_packed(record(kind, 41, 0, 1, 3, 1)))
    assert_events(out, [Rejected(41, 0, 0, 0, R.UNKNOWN_COMMAND, kind)])
    assert engine.digest() == digest
    assert engine.last_seq == 41


def test_unknown_command_in_a_batch_does_not_disturb_its_neighbours(make_engine):
    engine, cmds = seeded(make_engine, EQ)
    first = cmds.new(BUY, AAPL_REF, 5, account=3)
    cmds.seq += 1  # the unknown record takes seq first.seq + 1
    last = cmds.end_of_session(1)
    buf = encode_command(first) + record(9, first.seq + 1) + encode_command(last)
    kinds = [type(e).__name__ for e in decode_events(engine.process_packed(buf))]
    assert kinds == ["Accepted", "BookDelta", "TopOfBook", "Rejected", "SessionEndReport"]


@pytest.mark.parametrize("extra", [-RECORD_SIZE + 1, -1, 1, RECORD_SIZE - 1, RECORD_SIZE + 5])
def test_buffer_that_is_not_whole_records_raises_value_error_before_processing_any(make_engine, extra):
    engine, cmds = seeded(make_engine, EQ)
    digest, last_seq = engine.digest(), engine.last_seq
    buf = encode_command(cmds.new(BUY, AAPL_REF, 5, account=3))
    buf = buf[:extra] if extra < 0 else buf + b"\x00" * extra
    with pytest.raises(ValueError):
        engine.process_packed(buf)
    assert (engine.digest(), engine.last_seq) == (digest, last_seq)


def test_empty_buffer_gives_no_events(make_engine):
    engine, _ = seeded(make_engine, EQ)
    assert engine.process_packed(b"") == b""


def test_command_with_an_int64_overflow_cannot_be_encoded():
    with pytest.raises(ValueError):
        encode_command(NewOrder(1, 0, 1, 2**63, 1, BUY, LIMIT, GTC, AAPL_REF, 1))
    with pytest.raises(ValueError):
        encode_command(MassCancel(1, 0, 1, -(2**63) - 1))
    assert len(encode_command(EndOfSession(2**63 - 1, 0, 0))) == RECORD_SIZE
