"""Instrument reference data: the built-in set, TOML loading, and every way a config can be wrong."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from matching.engine import create_engine
from matching.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    InstrumentConfigError,
    by_asset_class,
    instrument_from_mapping,
    load_instruments,
    validate_instruments,
)
from matching.types import AssetClass, NewOrder, Side

# -- BUILT-IN SET -----------------------------------------------------------------------------


def test_default_instruments_validate_and_are_returned_unchanged():
    assert validate_instruments(DEFAULT_INSTRUMENTS) is DEFAULT_INSTRUMENTS


def test_default_set_has_two_instruments_per_asset_class_with_the_documented_ids():
    assert [(i.instrument_id, i.symbol) for i in DEFAULT_INSTRUMENTS] == [
        (1, "AAPL"), (2, "MSFT"), (3, "ESZ6"), (4, "GCZ6"),
        (5, "EURUSD"), (6, "GBPUSD"), (7, "BTC-USD"), (8, "ETH-USD"),
    ]
    assert {ac: [i.instrument_id for i in insts] for ac, insts in by_asset_class(DEFAULT_INSTRUMENTS).items()} == {
        AssetClass.EQUITY: [1, 2], AssetClass.FUTURE: [3, 4], AssetClass.FX: [5, 6], AssetClass.CRYPTO: [7, 8],
    }


@pytest.mark.parametrize(("instrument_id", "raw_cap"), [
    (1, 50_000_000_00 * 10**2),  # USD cents -> price 1e-4 x shares: shift 4 + 0 - 2
    (3, 2_000_000_000_00),  # shift 2 + 0 - 2 = 0
    (5, 200_000_000_00 * 10**3),  # shift 5 + 0 - 2
    (7, 10_000_000_00 * 10**8),  # shift 2 + 8 - 2
])
def test_notional_cap_in_raw_units(instrument_id, raw_cap):
    inst = next(i for i in DEFAULT_INSTRUMENTS if i.instrument_id == instrument_id)
    assert inst.max_notional_raw == raw_cap


def test_by_asset_class_sorts_each_group_by_instrument_id():
    shuffled = tuple(reversed(DEFAULT_INSTRUMENTS))
    assert by_asset_class(shuffled) == by_asset_class(DEFAULT_INSTRUMENTS)


# -- TOML -------------------------------------------------------------------------------------

TSLA = {
    "instrument_id": 11, "symbol": "TSLA", "asset_class": "equity", "currency": "USD",
    "price_scale": 4, "quantity_scale": 0, "tick_size": 100, "lot_size": 1, "min_quantity": 1,
    "max_quantity": 500_000, "max_notional": 25_000_000_00, "contract_multiplier": 1,
    "reference_price": 250_0000, "price_band_bps": 700,
}
EURGBP = {
    "instrument_id": 12, "symbol": "EURGBP", "asset_class": "FX", "currency": "GBP",
    "price_scale": 5, "quantity_scale": 0, "tick_size": 1, "lot_size": 1_000, "min_quantity": 1_000,
    "max_quantity": 50_000_000, "max_notional": 100_000_000_00, "contract_multiplier": 1,
    "reference_price": 85_000, "price_band_bps": 200,
}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def toml(*tables: dict) -> str:
    return "".join(
        "[[instrument]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()) + "\n"
        for table in tables
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instruments.toml"
    path.write_text(text)
    return path


def test_toml_config_replaces_the_built_in_set(tmp_path):
    loaded = load_instruments(write(tmp_path, toml(TSLA, EURGBP)))
    assert loaded == (
        Instrument(**{**TSLA, "asset_class": AssetClass.EQUITY}),
        Instrument(**{**EURGBP, "asset_class": AssetClass.FX}),
    )
    assert loaded[1].max_notional_raw == 100_000_000_00 * 10**3


def test_engine_runs_on_a_loaded_instrument(tmp_path, engine_impl):
    (tsla, _) = load_instruments(write(tmp_path, toml(TSLA, EURGBP)))
    engine = create_engine(AssetClass.EQUITY, (tsla,), implementation=engine_impl)
    assert engine.instrument_ids == [11]
    events = engine.process(NewOrder(1, 0, 11, 1, 1, Side.BUY, 1, 1, 250_0000, 10))
    assert type(events[0]).__name__ == "Accepted"
    # TSLA's own cap: 25M USD at 250.0000 allows 100_000 shares.
    events = engine.process(NewOrder(2, 0, 11, 2, 1, Side.BUY, 1, 1, 250_0000, 100_001))
    assert events[0].reason == 116  # NOTIONAL_ABOVE_MAX


def test_mapping_keeps_integers_and_strings_exactly():
    inst = instrument_from_mapping(dict(TSLA))
    assert inst == Instrument(**{**TSLA, "asset_class": AssetClass.EQUITY})


def spoil(**changes) -> dict:
    """TSLA with fields changed; a value of ``...`` removes the field."""
    table = {**TSLA, **changes}
    return {k: v for k, v in table.items() if v is not ...}


BAD_TABLES = [
    ("zero tick", [spoil(tick_size=0)], "instrument 'TSLA': tick_size must be positive"),
    ("negative tick", [spoil(tick_size=-100)], "instrument 'TSLA': tick_size must be positive"),
    ("zero lot", [spoil(lot_size=0)], "instrument 'TSLA': lot_size must be positive"),
    ("zero min quantity", [spoil(min_quantity=0)], "instrument 'TSLA': min_quantity must be positive"),
    ("zero multiplier", [spoil(contract_multiplier=0)], "instrument 'TSLA': contract_multiplier must be positive"),
    ("zero max notional", [spoil(max_notional=0)], "instrument 'TSLA': max_notional must be positive"),
    ("float tick", [spoil(tick_size=0.01)], "instrument 'TSLA': tick_size must be an integer (no floats), got 0.01"),
    ("float price", [spoil(reference_price=250.0)], "instrument 'TSLA': reference_price must be an integer"),
    ("float notional", [spoil(max_notional=1e9)], "instrument 'TSLA': max_notional must be an integer"),
    ("boolean lot", [spoil(lot_size=True)], "instrument 'TSLA': lot_size must be an integer"),
    ("string quantity", [spoil(max_quantity="500000")], "instrument 'TSLA': max_quantity must be an integer"),
    ("unknown field", [spoil(colour="red")], "instrument 'TSLA': unknown fields ['colour']"),
    ("missing field", [spoil(tick_size=...)], "instrument 'TSLA': missing fields ['tick_size']"),
    ("missing symbol", [spoil(symbol=...)], "instrument '<no symbol>': missing fields ['symbol']"),
    ("duplicate id", [TSLA, {**EURGBP, "instrument_id": 11}], "duplicate instrument_id 11"),
    ("duplicate symbol", [TSLA, {**EURGBP, "symbol": "TSLA"}], "duplicate symbol 'TSLA'"),
    ("min above max", [spoil(min_quantity=100, max_quantity=10)], "instrument 'TSLA': min_quantity exceeds max_quantity"),
    ("min not a lot multiple", [spoil(lot_size=10, min_quantity=15, max_quantity=100)],
     "instrument 'TSLA': min_quantity/max_quantity must be multiples of lot_size"),
    ("bad currency", [spoil(currency="XYZ")], "instrument 'TSLA': currency 'XYZ' is not one of"),
    ("lower-case currency", [spoil(currency="usd")], "instrument 'TSLA': currency 'usd' is not one of"),
    ("currency not a string", [spoil(currency=840)], "instrument 'TSLA': currency must be a string"),
    ("unknown asset class", [spoil(asset_class="BOND")], "instrument 'TSLA': asset_class 'BOND' is not one of"),
    ("asset class as number", [spoil(asset_class=1)], "instrument 'TSLA': asset_class 1 is not one of"),
    ("symbol not a string", [spoil(symbol=5)], "instrument 5: symbol must be a string"),
    ("empty symbol", [spoil(symbol="")], "instrument '': symbol must be 1-32 printable characters"),
    ("long symbol", [spoil(symbol="X" * 33)], "symbol must be 1-32 printable characters"),
    ("instrument id zero", [spoil(instrument_id=0)], "instrument 'TSLA': instrument_id must be in 1..2**31-1"),
    ("instrument id too big", [spoil(instrument_id=2**31)], "instrument 'TSLA': instrument_id must be in"),
    ("negative price scale", [spoil(price_scale=-1)], "instrument 'TSLA': price_scale must be in 0..12"),
    ("quantity scale above 12", [spoil(quantity_scale=13)], "instrument 'TSLA': quantity_scale must be in 0..12"),
    ("scales finer than the currency", [spoil(price_scale=1)],
     "instrument 'TSLA': price_scale plus quantity_scale must be at least the currency's minor units"),
    ("reference price off tick", [spoil(reference_price=250_0050)],
     "instrument 'TSLA': reference_price must be positive and on the tick grid"),
    ("zero reference price", [spoil(reference_price=0)], "instrument 'TSLA': reference_price must be positive"),
    ("tick above MAX_PRICE", [spoil(tick_size=10**16, reference_price=10**16)],
     "instrument 'TSLA': tick_size/reference_price must not exceed"),
    ("zero price band", [spoil(price_band_bps=0)], "instrument 'TSLA': price_band_bps must be in 1..10000"),
    ("price band above 100%", [spoil(price_band_bps=10_001)], "instrument 'TSLA': price_band_bps must be in"),
    ("quantity times multiplier overflows", [spoil(max_quantity=2**62, contract_multiplier=4)],
     "instrument 'TSLA': max_quantity times contract_multiplier does not fit in int64"),
    ("notional overflows raw units", [spoil(max_notional=2**62)],
     "instrument 'TSLA': max_notional is too large for int64 in raw units"),
    ("no instruments", [], "no instruments configured"),
]


@pytest.mark.parametrize(("tables", "message"), [c[1:] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES])
def test_bad_config_raises_an_error_naming_the_instrument_and_field(tmp_path, tables, message):
    text = toml(*tables) if tables else "instrument = []\n"
    with pytest.raises(InstrumentConfigError) as info:
        load_instruments(write(tmp_path, text))
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected one or more [[instrument]] tables"),
    ("[instrument]\nsymbol = \"TSLA\"\n", "expected one or more [[instrument]] tables"),
    ("[[instrument]\n", "cannot read instruments from"),
    ("[[instrument]]\nsymbol = \"TSLA\"\nsymbol = \"X\"\n", "cannot read instruments from"),
], ids=["empty file", "single table instead of array", "broken toml", "repeated key"])
def test_unreadable_or_shapeless_config_is_an_instrument_config_error(tmp_path, text, message):
    with pytest.raises(InstrumentConfigError) as info:
        load_instruments(write(tmp_path, text))
    assert message in str(info.value)


def test_missing_config_file_is_an_instrument_config_error(tmp_path):
    with pytest.raises(InstrumentConfigError, match="cannot read instruments from"):
        load_instruments(tmp_path / "nope.toml")


def test_validate_checks_each_built_in_field_rule_directly():
    good = DEFAULT_INSTRUMENTS[0]
    for change, field in [({"tick_size": 0}, "tick_size"), ({"lot_size": 0}, "lot_size"),
                          ({"currency": "XXX"}, "currency"), ({"max_quantity": 0}, "max_quantity")]:
        with pytest.raises(InstrumentConfigError, match=f"instrument 'AAPL': {field}"):
            dataclasses.replace(good, **change).validate()


def test_engine_refuses_an_instrument_of_another_asset_class(engine_impl):
    with pytest.raises(ValueError, match="EURUSD is not a EQUITY instrument"):
        create_engine(AssetClass.EQUITY, DEFAULT_INSTRUMENTS[:2] + DEFAULT_INSTRUMENTS[4:5],
                      implementation=engine_impl)
