"""Typed, frozen, validated configuration of the risk engine, with the issue's defaults.

``RiskConfig()`` is usable as is: 5 % price band (or the instrument's own ``price_band_bps``),
50 orders/s per participant and instrument, 500 messages/s per session (burst of 3 s, as CME
counts over a 3-second window), volatility half-life of 50 one-second samples, limits scaled by
clamp(reference vol / current vol, 0.25, 1.0), SPAN-like scenarios per asset class with a 50 %
equity/future offset, collateral in USD, 10-minute margin-call grace, 2 % daily loss, 50 ms x 3
latency anomaly, 15 s limit state -> 5 min pause. ``validated(instruments)`` checks every value
against the instruments it will run with and raises ``RiskConfigError`` naming the entry.
``risk_config_from_mapping`` reads the same shape from a TOML table (strict: unknown keys,
floats and wrong types are errors).

Units: quantities in the instrument's quantity units, prices in its price units, money in minor
units (of the named currency, or of ``margin.base_currency``), ratios in basis points, times in ns.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from matching.instruments import CURRENCY_MINOR_UNITS, Instrument
from matching.types import AssetClass

SECOND_NS = 1_000_000_000
FX_SCALE = 10**8  # fx rates: base-currency major units per major unit of the currency, x 10**8


class RiskConfigError(ValueError):
    """A risk configuration that cannot be used; the message says where and why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitConfig:
    orders_per_second: int = 50  # per participant per instrument (token bucket refill)
    order_burst: int = 50  # bucket capacity: the 51st order in one instant is rejected
    session_messages_per_second: int = 500  # new orders and replaces per session (CME: 500/s)
    session_burst: int = 1_500  # 3 s worth, like CME's 3-second counting window


@dataclass(frozen=True, kw_only=True, slots=True)
class VolatilityConfig:
    half_life_samples: int = 50  # EWMA half-life, in samples
    sample_interval_ns: int = SECOND_NS  # a sample is the first trade >= this long after the last
    prior_weight_ns: int = 300 * SECOND_NS  # the reference vol counts as this much observed time
    floor_bps: int = 2_500  # limit factor never below 0.25 x base
    cap_bps: int = 10_000  # nor above 1.0 x base (volatility only tightens the approved base)
    step_bps: int = 500  # factor is quantised to 5 % steps ...
    hysteresis_bps: int = 100  # ... and moves only when the raw factor passes a step by this much
    reference_vol_bps: tuple[tuple[AssetClass, int], ...] = (  # annualised (365-day calendar time)
        (AssetClass.EQUITY, 3_000), (AssetClass.FUTURE, 2_000), (AssetClass.FX, 1_000),
        (AssetClass.CRYPTO, 8_000),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """One price move of the scan (SPAN risk-array row), and the fraction of its loss covered."""

    move_bps: int
    cover_bps: int = 10_000


def span_scenarios(scan_bps: int, extreme_multiple: int = 2, extreme_cover_bps: int = 3_500) -> tuple[Scenario, ...]:
    """SPAN's price rows: 0, +-1/3, +-2/3, +-3/3 of the scan range at full cover, and +-2 x scan
    at 35 % cover. (SPAN's 16 rows pair each move with volatility up/down; for the linear
    instruments traded here the volatility leg changes nothing, so the 9 distinct rows remain.)"""
    rows = [Scenario(move_bps=0)]
    for k in (1, 2, 3):
        move = scan_bps * k // 3
        rows += [Scenario(move_bps=move), Scenario(move_bps=-move)]
    rows += [Scenario(move_bps=scan_bps * extreme_multiple, cover_bps=extreme_cover_bps),
             Scenario(move_bps=-scan_bps * extreme_multiple, cover_bps=extreme_cover_bps)]
    return tuple(rows)


@dataclass(frozen=True, kw_only=True, slots=True)
class ClassMarginConfig:
    asset_class: AssetClass
    scenarios: tuple[Scenario, ...]
    initial_bps: int = 11_000  # initial margin = maintenance x 1.10 (CME's member ratio)

    def worst_moves(self) -> tuple[int, int]:
        """(down, up) in bps x bps: the worst covered adverse move for a long and for a short."""
        down = max([0] + [-s.move_bps * s.cover_bps for s in self.scenarios])
        up = max([0] + [s.move_bps * s.cover_bps for s in self.scenarios])
        return down, up


@dataclass(frozen=True, kw_only=True, slots=True)
class OffsetConfig:
    """Inter-class spread credit: opposite base-currency deltas in the two classes are matched
    1:1 and ``credit_bps`` of each matched leg's scan risk is given back. Pairs are applied in
    configuration order (SPAN's priority order), each consuming the delta it matched."""

    class_a: AssetClass
    class_b: AssetClass
    credit_bps: int


def _default_classes() -> tuple[ClassMarginConfig, ...]:
    return (
        ClassMarginConfig(asset_class=AssetClass.EQUITY, scenarios=span_scenarios(1_500)),  # portfolio-margin +-15 %
        ClassMarginConfig(asset_class=AssetClass.FUTURE, scenarios=span_scenarios(600)),  # index futures ~6 %
        ClassMarginConfig(asset_class=AssetClass.FX, scenarios=span_scenarios(400)),
        ClassMarginConfig(asset_class=AssetClass.CRYPTO, scenarios=span_scenarios(2_000)),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class MarginConfig:
    base_currency: str = "USD"
    # (currency, rate): base major units per currency major unit x FX_SCALE; EUR and GBP match the
    # built-in EURUSD / GBPUSD reference prices (see fx_rates_from_instruments), JPY and CHF are
    # placeholders to be configured.
    fx_rates: tuple[tuple[str, int], ...] = (
        ("USD", 100_000_000), ("USDT", 100_000_000), ("EUR", 108_500_000), ("GBP", 127_000_000),
        ("CHF", 113_000_000), ("JPY", 670_000),
    )
    classes: tuple[ClassMarginConfig, ...] = field(default_factory=_default_classes)
    offsets: tuple[OffsetConfig, ...] = (
        OffsetConfig(class_a=AssetClass.EQUITY, class_b=AssetClass.FUTURE, credit_bps=5_000),
    )
    margin_call_grace_ns: int = 600 * SECOND_NS
    # collateral of a participant the config does not list (development default: USD 10 M)
    default_collateral: tuple[tuple[str, int], ...] = (("USD", 10_000_000_00),)


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerConfig:
    max_daily_loss_bps: int = 200  # of the day's starting equity
    latency_threshold_ns: int = 50_000_000  # strictly above this is an anomaly
    latency_consecutive: int = 3
    luld_limit_state_ns: int = 15 * SECOND_NS
    luld_pause_ns: int = 300 * SECOND_NS
    heartbeat_timeout_ns: int = 30 * SECOND_NS  # for HeartbeatMonitor (live, outside the digest)
    trading_day_offset_ns: int = 0  # the trading day starts at UTC midnight + this


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentRiskConfig:
    """Per-instrument overrides; None keeps the default."""

    instrument_id: int
    price_band_bps: int | None = None  # default: Instrument.price_band_bps
    max_order_quantity: int | None = None  # default: Instrument.max_quantity
    max_order_notional: int | None = None  # minor units of its currency; default Instrument.max_notional
    base_position_limit: int | None = None  # default: position_limit_multiple x max_quantity
    reference_vol_bps: int | None = None  # default: by asset class


@dataclass(frozen=True, kw_only=True, slots=True)
class ParticipantRiskConfig:
    participant_id: str
    collateral: tuple[tuple[str, int], ...] | None = None  # None: margin.default_collateral
    position_limits: tuple[tuple[int, int], ...] = ()  # (instrument_id, base limit) overrides


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskConfig:
    rates: RateLimitConfig = field(default_factory=RateLimitConfig)
    volatility: VolatilityConfig = field(default_factory=VolatilityConfig)
    margin: MarginConfig = field(default_factory=MarginConfig)
    breakers: BreakerConfig = field(default_factory=BreakerConfig)
    instruments: tuple[InstrumentRiskConfig, ...] = ()
    participants: tuple[ParticipantRiskConfig, ...] = ()
    position_limit_multiple: int = 10  # default base position limit = this x Instrument.max_quantity

    def fingerprint(self) -> bytes:
        """SHA-256 of the canonical JSON of this config (part of the state digest)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()).digest()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the ledger's CONFIG record carries it); ``risk_config_from_json`` reads it back."""
        return asdict(self)

    def with_(self, **changes: Any) -> RiskConfig:
        """Copy with top-level fields replaced; nested: ``cfg.with_(rates=replace(cfg.rates, ...))``."""
        return replace(self, **changes)

    def validated(self, instruments: tuple[Instrument, ...]) -> RiskConfig:
        _validate(self, instruments)
        return self


def fx_rates_from_instruments(instruments: tuple[Instrument, ...], base: str = "USD") -> tuple[tuple[str, int], ...]:
    """FX rates for collateral conversion from the reference prices of FX instruments whose
    symbol is <CCY><BASE> (e.g. EURUSD, price_scale 5 -> rate in FX_SCALE units)."""
    out = {base: FX_SCALE}
    for inst in instruments:
        if inst.asset_class == AssetClass.FX and len(inst.symbol) == 6 and inst.symbol[3:] == base:
            out[inst.symbol[:3]] = inst.reference_price * FX_SCALE // 10**inst.price_scale
    return tuple(sorted(out.items()))


def _fail(where: str, why: str) -> None:
    raise RiskConfigError(f"{where}: {why}")


def _positive(where: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            _fail(where, f"{name} must be a positive integer, got {value!r}")


def _validate(cfg: RiskConfig, instruments: tuple[Instrument, ...]) -> None:
    _positive("rates", cfg.rates, "orders_per_second", "order_burst", "session_messages_per_second", "session_burst")
    vol = cfg.volatility
    _positive("volatility", vol, "half_life_samples", "sample_interval_ns", "prior_weight_ns", "floor_bps",
              "cap_bps", "step_bps")
    if vol.half_life_samples > 10_000:
        _fail("volatility", "half_life_samples must be at most 10000")
    if not vol.floor_bps <= vol.cap_bps <= 100_000:
        _fail("volatility", "need floor_bps <= cap_bps <= 100000")
    if not 0 <= vol.hysteresis_bps < vol.step_bps:
        _fail("volatility", "hysteresis_bps must be in 0..step_bps-1")
    ref_classes = [ac for ac, _ in vol.reference_vol_bps]
    for ac, bps in vol.reference_vol_bps:
        if not isinstance(ac, AssetClass) or not 0 < bps <= 100_000:
            _fail("volatility.reference_vol_bps", f"({ac!r}, {bps!r}) needs an AssetClass and 1..100000 bps")
    if len(set(ref_classes)) != len(ref_classes):
        _fail("volatility.reference_vol_bps", "duplicate asset class")

    m = cfg.margin
    if m.base_currency not in CURRENCY_MINOR_UNITS:
        _fail("margin.base_currency", f"{m.base_currency!r} is not one of {sorted(CURRENCY_MINOR_UNITS)}")
    rates = dict(m.fx_rates)
    if len(rates) != len(m.fx_rates):
        _fail("margin.fx_rates", "duplicate currency")
    for ccy, rate in m.fx_rates:
        if ccy not in CURRENCY_MINOR_UNITS:
            _fail("margin.fx_rates", f"unknown currency {ccy!r}")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            _fail("margin.fx_rates", f"rate of {ccy} must be a positive integer (x {FX_SCALE})")
    if rates.get(m.base_currency) != FX_SCALE:
        _fail("margin.fx_rates", f"the base currency {m.base_currency} must have rate {FX_SCALE}")
    seen: set[AssetClass] = set()
    for c in m.classes:
        where = f"margin.classes[{getattr(c.asset_class, 'name', c.asset_class)}]"
        if not isinstance(c.asset_class, AssetClass) or c.asset_class in seen:
            _fail(where, "asset_class must be an AssetClass, each at most once")
        seen.add(c.asset_class)
        if not c.scenarios:
            _fail(where, "needs at least one scenario")
        for s in c.scenarios:
            if not -10_000 <= s.move_bps <= 100_000 or not 0 <= s.cover_bps <= 10_000:
                _fail(where, f"scenario {s} out of range (move -10000..100000, cover 0..10000)")
        if not 10_000 <= c.initial_bps <= 100_000:
            _fail(where, "initial_bps must be in 10000..100000 (initial >= maintenance)")
    for o in m.offsets:
        where = f"margin.offsets[{o.class_a!r}/{o.class_b!r}]"
        if o.class_a not in seen or o.class_b not in seen or o.class_a == o.class_b:
            _fail(where, "needs two different configured asset classes")
        if not 0 <= o.credit_bps <= 10_000:
            _fail(where, "credit_bps must be in 0..10000")
    if m.margin_call_grace_ns < 0:
        _fail("margin", "margin_call_grace_ns must not be negative")
    _check_collateral("margin.default_collateral", m.default_collateral, rates)

    b = cfg.breakers
    _positive("breakers", b, "max_daily_loss_bps", "latency_threshold_ns", "latency_consecutive",
              "luld_limit_state_ns", "luld_pause_ns", "heartbeat_timeout_ns")
    if b.max_daily_loss_bps > 10_000:
        _fail("breakers", "max_daily_loss_bps must be at most 10000")
    _positive("config", cfg, "position_limit_multiple")

    by_id = {i.instrument_id: i for i in instruments}
    for inst in instruments:
        if inst.asset_class not in seen:
            _fail(f"instrument {inst.symbol!r}", f"asset class {inst.asset_class.name} has no margin scenarios")
        if inst.asset_class not in ref_classes and not any(
                o.instrument_id == inst.instrument_id and o.reference_vol_bps for o in cfg.instruments):
            _fail(f"instrument {inst.symbol!r}", "no reference volatility for its asset class")
        if inst.currency not in rates:
            _fail(f"instrument {inst.symbol!r}", f"no FX rate for its currency {inst.currency}")
    ids: set[int] = set()
    for o in cfg.instruments:
        where = f"instruments[{o.instrument_id}]"
        if o.instrument_id not in by_id or o.instrument_id in ids:
            _fail(where, "unknown or duplicate instrument_id")
        ids.add(o.instrument_id)
        inst = by_id[o.instrument_id]
        for name in ("price_band_bps", "max_order_quantity", "max_order_notional", "base_position_limit",
                     "reference_vol_bps"):
            value = getattr(o, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                _fail(where, f"{name} must be a positive integer or None")
        if o.price_band_bps is not None and o.price_band_bps > 10_000:
            _fail(where, "price_band_bps must be at most 10000")
        if o.max_order_quantity is not None and o.max_order_quantity % inst.lot_size:
            _fail(where, "max_order_quantity must be a multiple of the lot size")
    pids: set[str] = set()
    for p in cfg.participants:
        where = f"participants[{p.participant_id!r}]"
        if not p.participant_id or p.participant_id in pids:
            _fail(where, "participant_id must be non-empty and unique")
        pids.add(p.participant_id)
        if p.collateral is not None:
            _check_collateral(where + ".collateral", p.collateral, rates)
        limit_ids = [iid for iid, _ in p.position_limits]
        if len(set(limit_ids)) != len(limit_ids):
            _fail(where, "duplicate instrument in position_limits")
        for iid, limit in p.position_limits:
            if iid not in by_id or isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                _fail(where, f"position limit ({iid}, {limit!r}) needs a known instrument and a limit >= 0")


def _check_collateral(where: str, collateral: tuple[tuple[str, int], ...], rates: dict[str, int]) -> None:
    ccys = [c for c, _ in collateral]
    if len(set(ccys)) != len(ccys):
        _fail(where, "duplicate currency")
    for ccy, amount in collateral:
        if ccy not in rates:
            _fail(where, f"no FX rate for {ccy!r}")
        if isinstance(amount, bool) or not isinstance(amount, int):
            _fail(where, f"amount of {ccy} must be an integer (minor units)")


# -- LOADING FROM A MAPPING (TOML [risk] table) ------------------------------------------------


def _typed(where: str, cls: type, raw: Any, convert: dict[str, Any] | None = None) -> Any:
    if not isinstance(raw, dict):
        raise RiskConfigError(f"[{where}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise RiskConfigError(f"[{where}] unknown keys {sorted(unknown)}")
    values = {}
    for key, value in raw.items():
        if convert and key in convert:
            try:
                values[key] = convert[key](value)
            except (KeyError, ValueError, TypeError) as exc:
                raise RiskConfigError(f"[{where}] {key}: {exc}") from None
        elif isinstance(value, bool) or not isinstance(value, int | str):
            raise RiskConfigError(f"[{where}] {key} must be an integer (no floats), got {value!r}")
        else:
            values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise RiskConfigError(f"[{where}] {exc}") from None


def _asset_class(value: Any) -> AssetClass:
    return AssetClass[str(value).upper()]


def _pairs(value: Any) -> tuple[tuple[Any, int], ...]:
    if isinstance(value, dict):
        value = sorted(value.items())
    out = []
    for item in value:
        key, number = item
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"{item!r}: value must be an integer")
        out.append((key, number))
    return tuple(out)


def risk_config_from_mapping(raw: dict[str, Any]) -> RiskConfig:
    """Build a RiskConfig from a TOML-like mapping:

    ``[rates]``, ``[volatility]`` (``reference_vol_bps = {EQUITY = 3000, ...}``), ``[margin]``
    (``fx_rates = {EUR = 108500000}``, ``default_collateral = {USD = 1000000000}``,
    ``[[margin.classes]]`` with ``asset_class``, ``scan_bps`` or ``scenarios = [[move, cover], ...]``,
    ``initial_bps``; ``[[margin.offsets]]`` with ``class_a``, ``class_b``, ``credit_bps``),
    ``[breakers]``, ``[[instruments]]``, ``[[participants]]`` (``collateral = {USD = ...}``,
    ``position_limits = [[instrument_id, limit], ...]``), ``position_limit_multiple``.
    Call ``validated(instruments)`` on the result."""
    allowed = {"rates", "volatility", "margin", "breakers", "instruments", "participants", "position_limit_multiple"}
    unknown = set(raw) - allowed
    if unknown:
        raise RiskConfigError(f"[risk] unknown keys {sorted(unknown)}")
    kw: dict[str, Any] = {}
    if "rates" in raw:
        kw["rates"] = _typed("risk.rates", RateLimitConfig, raw["rates"])
    if "volatility" in raw:
        kw["volatility"] = _typed("risk.volatility", VolatilityConfig, raw["volatility"], {
            "reference_vol_bps": lambda v: tuple((_asset_class(k), n) for k, n in _pairs(v))})
    if "margin" in raw:
        def classes(v: Any) -> tuple[ClassMarginConfig, ...]:
            out = []
            for t in v:
                t = dict(t)
                ac = _asset_class(t.pop("asset_class"))
                if "scan_bps" in t:
                    scen = span_scenarios(int(t.pop("scan_bps")))
                else:
                    scen = tuple(Scenario(move_bps=int(mv), cover_bps=int(cv)) for mv, cv in t.pop("scenarios"))
                out.append(ClassMarginConfig(asset_class=ac, scenarios=scen, **t))
            return tuple(out)

        def offsets(v: Any) -> tuple[OffsetConfig, ...]:
            return tuple(OffsetConfig(class_a=_asset_class(t["class_a"]), class_b=_asset_class(t["class_b"]),
                                      credit_bps=int(t["credit_bps"])) for t in v)
        kw["margin"] = _typed("risk.margin", MarginConfig, raw["margin"], {
            "fx_rates": _pairs, "default_collateral": _pairs, "classes": classes, "offsets": offsets})
    if "breakers" in raw:
        kw["breakers"] = _typed("risk.breakers", BreakerConfig, raw["breakers"])
    if "instruments" in raw:
        kw["instruments"] = tuple(_typed("risk.instruments", InstrumentRiskConfig, t) for t in raw["instruments"])
    if "participants" in raw:
        kw["participants"] = tuple(
            _typed("risk.participants", ParticipantRiskConfig, t,
                   {"collateral": _pairs, "position_limits": lambda v: tuple((int(a), int(b)) for a, b in v)})
            for t in raw["participants"])
    if "position_limit_multiple" in raw:
        kw["position_limit_multiple"] = raw["position_limit_multiple"]
    return RiskConfig(**kw)


def risk_config_from_json(raw: dict[str, Any]) -> RiskConfig:
    """The inverse of ``RiskConfig.to_json`` (after a JSON round trip: lists for tuples, ints for
    asset classes). Every field must be present: it reads what the hub itself wrote."""
    try:
        return _from_json(RiskConfig, raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise RiskConfigError(f"a recorded risk configuration does not read back: {type(exc).__name__}: {exc}") from None


def _from_json(tp: Any, value: Any) -> Any:
    if is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _from_json(hints[f.name], value[f.name]) for f in fields(tp)})
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], item) for item in value)
        return tuple(_from_json(arg, item) for arg, item in zip(args, value, strict=True))
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _from_json(inner, value)
    if tp is AssetClass:
        return AssetClass(value)
    if tp in (int, str) and (isinstance(value, bool) or not isinstance(value, tp)):
        raise TypeError(f"expected {tp.__name__}, got {value!r}")
    return value
