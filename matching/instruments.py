"""Instrument reference data: what may be traded, in which units, within which bounds.

Prices are integers in units of 10**-price_scale of the currency; quantities integers in units
of 10**-quantity_scale of the instrument (shares, contracts, base currency, coins). The engine
checks tick and lot multiples, quantity bounds and the notional cap with integer arithmetic only.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from matching.types import MAX_PRICE, AssetClass

#: Minor units per currency (ISO 4217 exponent); notional caps are given in minor units.
CURRENCY_MINOR_UNITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "CHF": 2, "USDT": 2}
_INT64_MAX = 2**63 - 1
MAX_QUANTITY = 10**12  # per order, in quantity units


class InstrumentConfigError(ValueError):
    """Reference data that cannot be loaded; the message names the instrument and the field."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Instrument:
    instrument_id: int
    symbol: str
    asset_class: AssetClass
    currency: str
    price_scale: int  # decimals of a price unit
    quantity_scale: int  # decimals of a quantity unit
    tick_size: int  # in price units
    lot_size: int  # in quantity units
    min_quantity: int
    max_quantity: int
    max_notional: int  # in minor units of the currency, per order
    contract_multiplier: int  # currency per (price x quantity); 1 for cash instruments
    reference_price: int  # in price units; also prices the notional check of market orders
    price_band_bps: int  # allowed distance from the reference price, basis points (risk stage)

    @property
    def max_notional_raw(self) -> int:
        """The notional cap in the engine's raw unit: price units x quantity units x multiplier.

        raw notional = price * qty * multiplier, worth 10**-(price_scale + quantity_scale) currency.
        """
        shift = self.price_scale + self.quantity_scale - CURRENCY_MINOR_UNITS[self.currency]
        return self.max_notional * 10**shift

    def notional_raw(self, price: int, quantity: int) -> int:
        return price * quantity * self.contract_multiplier

    def validate(self) -> None:
        def fail(field: str, why: str) -> None:
            raise InstrumentConfigError(f"instrument {self.symbol!r}: {field} {why}")

        if not self.symbol or not self.symbol.isprintable() or len(self.symbol) > 32:
            fail("symbol", "must be 1-32 printable characters")
        if not 1 <= self.instrument_id <= 2**31 - 1:
            fail("instrument_id", "must be in 1..2**31-1")
        if self.currency not in CURRENCY_MINOR_UNITS:
            fail("currency", f"{self.currency!r} is not one of {sorted(CURRENCY_MINOR_UNITS)}")
        for name in ("price_scale", "quantity_scale"):
            if not 0 <= getattr(self, name) <= 12:
                fail(name, "must be in 0..12")
        if self.price_scale + self.quantity_scale < CURRENCY_MINOR_UNITS[self.currency]:
            fail("price_scale", "plus quantity_scale must be at least the currency's minor units")
        for name in ("tick_size", "lot_size", "min_quantity", "max_quantity", "contract_multiplier"):
            if getattr(self, name) <= 0:
                fail(name, "must be positive")
        if self.max_notional <= 0:
            fail("max_notional", "must be positive")
        if self.min_quantity % self.lot_size or self.max_quantity % self.lot_size:
            fail("min_quantity/max_quantity", "must be multiples of lot_size")
        if self.min_quantity > self.max_quantity:
            fail("min_quantity", "exceeds max_quantity")
        if self.reference_price <= 0 or self.reference_price % self.tick_size:
            fail("reference_price", "must be positive and on the tick grid")
        if self.tick_size > MAX_PRICE or self.reference_price > MAX_PRICE:
            fail("tick_size/reference_price", f"must not exceed {MAX_PRICE}")
        if not 1 <= self.price_band_bps <= 10_000:
            fail("price_band_bps", "must be in 1..10000")
        # The engine checks qty * multiplier > max_notional_raw // price, so only this product
        # and the raw cap itself must fit in int64.
        if self.max_quantity * self.contract_multiplier > _INT64_MAX:
            fail("max_quantity", "times contract_multiplier does not fit in int64")
        if self.max_quantity > MAX_QUANTITY:
            # A price level sums its orders' sizes in int64: this cap keeps millions of max-size
            # orders at one price from overflowing it.
            fail("max_quantity", f"must not exceed {MAX_QUANTITY}")
        if self.max_notional_raw > _INT64_MAX:
            fail("max_notional", "is too large for int64 in raw units")


def _inst(**kw: Any) -> Instrument:
    return Instrument(**kw)


#: Built-in reference data: two of each asset class, realistic units and bounds.
DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    _inst(instrument_id=1, symbol="AAPL", asset_class=AssetClass.EQUITY, currency="USD",
          price_scale=4, quantity_scale=0, tick_size=100, lot_size=1, min_quantity=1,
          max_quantity=1_000_000, max_notional=50_000_000_00, contract_multiplier=1,
          reference_price=190_0000, price_band_bps=500),
    _inst(instrument_id=2, symbol="MSFT", asset_class=AssetClass.EQUITY, currency="USD",
          price_scale=4, quantity_scale=0, tick_size=100, lot_size=1, min_quantity=1,
          max_quantity=1_000_000, max_notional=50_000_000_00, contract_multiplier=1,
          reference_price=420_0000, price_band_bps=500),
    _inst(instrument_id=3, symbol="ESZ6", asset_class=AssetClass.FUTURE, currency="USD",
          price_scale=2, quantity_scale=0, tick_size=25, lot_size=1, min_quantity=1,
          max_quantity=5_000, max_notional=2_000_000_000_00, contract_multiplier=50,
          reference_price=6000_00, price_band_bps=500),
    _inst(instrument_id=4, symbol="GCZ6", asset_class=AssetClass.FUTURE, currency="USD",
          price_scale=2, quantity_scale=0, tick_size=10, lot_size=1, min_quantity=1,
          max_quantity=5_000, max_notional=2_000_000_000_00, contract_multiplier=100,
          reference_price=2650_00, price_band_bps=500),
    _inst(instrument_id=5, symbol="EURUSD", asset_class=AssetClass.FX, currency="USD",
          price_scale=5, quantity_scale=0, tick_size=1, lot_size=1_000, min_quantity=1_000,
          max_quantity=100_000_000, max_notional=200_000_000_00, contract_multiplier=1,
          reference_price=1_08500, price_band_bps=200),
    _inst(instrument_id=6, symbol="GBPUSD", asset_class=AssetClass.FX, currency="USD",
          price_scale=5, quantity_scale=0, tick_size=1, lot_size=1_000, min_quantity=1_000,
          max_quantity=100_000_000, max_notional=200_000_000_00, contract_multiplier=1,
          reference_price=1_27000, price_band_bps=200),
    _inst(instrument_id=7, symbol="BTC-USD", asset_class=AssetClass.CRYPTO, currency="USD",
          price_scale=2, quantity_scale=8, tick_size=1, lot_size=10_000, min_quantity=10_000,
          max_quantity=100_00000000, max_notional=10_000_000_00, contract_multiplier=1,
          reference_price=95_000_00, price_band_bps=1000),
    _inst(instrument_id=8, symbol="ETH-USD", asset_class=AssetClass.CRYPTO, currency="USD",
          price_scale=2, quantity_scale=8, tick_size=1, lot_size=100_000, min_quantity=100_000,
          max_quantity=1_000_00000000, max_notional=10_000_000_00, contract_multiplier=1,
          reference_price=3_500_00, price_band_bps=1000),
)


def validate_instruments(instruments: tuple[Instrument, ...]) -> tuple[Instrument, ...]:
    if not instruments:
        raise InstrumentConfigError("no instruments configured")
    seen_ids: set[int] = set()
    seen_symbols: set[str] = set()
    for inst in instruments:
        inst.validate()
        if inst.instrument_id in seen_ids:
            raise InstrumentConfigError(f"duplicate instrument_id {inst.instrument_id}")
        if inst.symbol in seen_symbols:
            raise InstrumentConfigError(f"duplicate symbol {inst.symbol!r}")
        seen_ids.add(inst.instrument_id)
        seen_symbols.add(inst.symbol)
    return instruments


_FIELD_NAMES = {f.name for f in fields(Instrument)}


def instrument_from_mapping(raw: dict[str, Any]) -> Instrument:
    """Build one instrument from a config table, rejecting unknown or missing fields and floats."""
    symbol = raw.get("symbol", "<no symbol>")
    unknown = set(raw) - _FIELD_NAMES
    if unknown:
        raise InstrumentConfigError(f"instrument {symbol!r}: unknown fields {sorted(unknown)}")
    missing = _FIELD_NAMES - set(raw)
    if missing:
        raise InstrumentConfigError(f"instrument {symbol!r}: missing fields {sorted(missing)}")
    values = dict(raw)
    try:
        values["asset_class"] = AssetClass[str(raw["asset_class"]).upper()]
    except KeyError:
        raise InstrumentConfigError(
            f"instrument {symbol!r}: asset_class {raw['asset_class']!r} is not one of "
            f"{[a.name for a in AssetClass]}"
        ) from None
    for name, value in values.items():
        if name in ("symbol", "currency", "asset_class"):
            if name != "asset_class" and not isinstance(value, str):
                raise InstrumentConfigError(f"instrument {symbol!r}: {name} must be a string")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise InstrumentConfigError(
                f"instrument {symbol!r}: {name} must be an integer (no floats), got {value!r}"
            )
    inst = Instrument(**values)
    inst.validate()
    return inst


def load_instruments(path: str | Path) -> tuple[Instrument, ...]:
    """Load a TOML file of ``[[instrument]]`` tables; it replaces the built-in set entirely."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InstrumentConfigError(f"cannot read instruments from {path}: {exc}") from exc
    tables = doc.get("instrument")
    if not isinstance(tables, list):
        raise InstrumentConfigError(f"{path}: expected one or more [[instrument]] tables")
    return validate_instruments(tuple(instrument_from_mapping(t) for t in tables))


def check_engine_instruments(asset_class: AssetClass, instruments: tuple[Instrument, ...]) -> None:
    """What an engine requires of the instruments it is built with (both engines call this)."""
    seen: set[int] = set()
    for inst in instruments:
        if inst.asset_class != asset_class:
            raise ValueError(f"{inst.symbol} is not a {AssetClass(asset_class).name} instrument")
        if inst.instrument_id in seen:
            raise ValueError(f"instrument id {inst.instrument_id} given twice")
        seen.add(inst.instrument_id)


def by_asset_class(instruments: tuple[Instrument, ...]) -> dict[AssetClass, tuple[Instrument, ...]]:
    out: dict[AssetClass, list[Instrument]] = {}
    for inst in instruments:
        out.setdefault(inst.asset_class, []).append(inst)
    return {ac: tuple(sorted(v, key=lambda i: i.instrument_id)) for ac, v in out.items()}
