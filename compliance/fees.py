"""Fee schedule: versioned maker/taker fees, rebates, tiered per-contract fees and monthly fixed fees.

Everything is integer arithmetic: no float is ever created. The module does not import ``hub``,
so ``hub.config`` may import it; participant classes are plain strings ("scalper",
"institution", "market_maker"), and ``hub.config.ParticipantClass`` (a ``StrEnum``) works as is.

Calling it from the hub
-----------------------
Build one :class:`FeeEngine` at start-up, before ledger replay, and drive it from the
single-threaded post-trade path in sequence order (it is not thread-safe)::

    fees = FeeEngine(DEFAULT_FEE_SCHEDULES)          # or load_fee_schedules("fees.toml")
    for p in config.participants:                     # so a quiet participant is still billed
        if p.participant_class in FEE_CLASSES:
            fees.register_participant(p.id, p.participant_class)

    # on every matching.types.Trade, with the hub time of the command that caused it:
    result = fees.on_trade(ts, instrument, trade,
                           maker_id=..., maker_class=..., taker_id=..., taker_class=...)
    result.maker.fee, result.taker.fee     # int, minor units of instrument.currency
    result.fixed_charges                   # monthly fixed fees that fell due (usually empty)

* Execution report of each side: ``fee`` (int64, minor units; positive = the participant pays,
  negative = rebate), ``fee_currency`` (= ``FeeRecord.currency``), the liquidity role (the
  existing ``aggressor`` flag), and for audit ``fee_schedule_version`` and ``fee_tier``.
* Ledger: ``FeeRecord.to_dict()`` for each side and ``FixedFeeCharge.to_dict()`` for each fixed
  charge (canonical-JSON friendly: ints and strings only). ``FeeRecord.from_dict`` and
  ``FixedFeeCharge.from_dict`` read them back, so ``compliance.statements`` can be built from
  the ledger alone, without re-running the engine.
* Checkpoints: ``state_digest()`` (SHA-256 over a canonical encoding, includes the schedule set's
  own digest). ``snapshot()`` / ``FeeEngine.restore()`` round-trip the state as JSON-able data.
* Other hub-time events may call ``advance(ts)`` so monthly fixed fees fall due at the first
  sequenced event of a month, not only at the first trade; charges depend only on the month,
  never on which event triggered them.

The engine never reads a clock: month boundaries come from the hub time passed in (UTC calendar
months; hub time is ns since the Unix epoch). Time may not go back into an earlier month.

Units
-----
* Fees: integers in minor units of the instrument currency (``CURRENCY_MINOR_UNITS``); monthly
  fixed fees in minor units of the schedule's ``billing_currency``. Sign: positive = the
  participant pays the venue, negative = the venue pays a rebate. Venue net = sum of all fees.
* Notional-based rates: integer micro-basis-points (``MICRO_BP_PER_BP`` = 10**6 per bp, so
  1 ubp = 10**-10 of notional). 0.1 bp = 100_000 ubp.
* Per-contract fees: integer micro-units of the instrument currency (10**-6 USD), so
  $0.0030/share = 3_000 and Nasdaq's $0.00305 = 3_050 are exact.
* A *contract* is one whole quantity unit, i.e. ``10**quantity_scale`` raw quantity units: a
  share (AAPL), a futures contract (ESZ6), one EUR (EURUSD), one BTC (BTC-USD). Per-contract fees
  on fractional quantities are pro rata and exact (0.5 BTC pays half of one contract's fee
  before the single rounding). The default schedule charges per-contract fees only on equities
  and futures; FX and crypto are bp-only. Contract volume is kept exactly in units of
  10**-12 contract (``VOLUME_PER_CONTRACT`` = 10**12; quantity_scale is at most 12).

The fee of one fill and the rounding rule
-----------------------------------------
With ``N = price * quantity * contract_multiplier`` (raw notional, worth 10**-(ps+qs) currency),
``r`` the bp rate in ubp, ``p`` the per-contract fee in micro-units, ``mu`` the currency's minor
units, ``ps``/``qs`` the instrument's price and quantity scales::

    exact fee (minor units) = (N * r + quantity * p * 10**(ps + 4)) / 10**(ps + qs - mu + 10)
    fee = ceil(exact fee)

The exact value is rounded **once**, toward plus infinity: a charge rounds up, a rebate rounds
toward zero, so rounding always favours the venue by less than one minor unit per fill.
Consequences: (1) venue net after rounding >= exact venue net, so a schedule that never loses
money exactly never loses after rounding either; (2) no drift: every reported fee is an integer,
statements and ledger totals are integer sums of exactly those integers, and the difference from
the exact (unrounded) total is in [0, n) minor units for n fills, all in the venue's favour.

Schedule structure and validation
---------------------------------
A :class:`FeeScheduleSet` holds versions with strictly increasing ``effective_from`` (hub time,
ns); ``schedule_at(ts)`` is the version whose effective_from <= ts < next version's. Each
:class:`FeeSchedule` has, per participant class, a monthly fixed fee, a maker and a taker bp
rate, and per asset class optional per-contract maker/taker fees with volume tiers.

Tiers are keyed on the participant's contract volume in that asset class (maker and taker fills,
all instruments of the class) in the **previous UTC calendar month**, so every fee is known at
execution (Reg NMS Rule 610 amendments, 2024). A tier ``{above = 10000, ...}`` applies when the
previous month's volume is strictly **greater** than 10,000: 9,999 and 10,000 contracts pay the
base tier, 10,001 the first discount tier ("discounts above 10,000 contracts a month"). Tiers
must have increasing ``above`` and non-increasing fees (they are discounts). The monthly fixed
fee is charged in full (no proration) once per participant per calendar month, priced by the
version in force at 00:00 UTC on the month's first day (the first version, if the set starts later
in that month); a month without any event is still billed when the next event arrives.

Venue-net rule: a version is refused (:class:`VenueLossError`) unless, for every (maker class,
taker class) pair and every asset class,

    maker_bp + taker_bp >= 0   and   best maker per-contract + best taker per-contract >= 0

where "best" is the most favourable (lowest) tier of each side, as the two sides' tiers come from
independent volumes. Sufficient: the exact venue net of a fill is
``(maker_bp + taker_bp) * notional + (maker_pc + taker_pc) * contracts``, a sum of two
non-negative terms, and rounding only adds to it. Necessary: prices are not bounded relative to
fees (tick sizes reach 10**-12 and prices 10**15), so with a negative bp sum a high enough price,
and with a negative per-contract sum a low enough price, makes the venue pay out more than it
collects. A version may opt out with ``allow_venue_loss = true``.

Defaults (``DEFAULT_FEE_SCHEDULE_TOML``, version "default-v1", in force from the epoch)
----------------------------------------------------------------------------------------
* scalper: 0.1 bp of executed notional on every fill and a 0.2 bp rebate for adding liquidity,
  so maker -0.1 bp (net rebate) and taker +0.1 bp; no fixed fee, no per-contract fees.
* institution: $1,000.00 a month; maker 0 bp, taker 0.1 bp (the taker bp every class pays to
  cover the largest maker rebate, 0.1 bp); per-contract fees, maker/taker, by previous-month
  volume: equities $0.0010/$0.0030 a share, above 10,000 shares $0.0008/$0.0025, above 100,000
  $0.0005/$0.0020; futures $0.50/$0.75 a contract, above 10,000 $0.40/$0.60, above 50,000
  $0.30/$0.45; FX and crypto bp only.
* market_maker: maker -0.1 bp (rebate), taker +0.2 bp; no fixed fee, no per-contract fees.

TOML format (``load_fee_schedules(path)``; the same shape as a dict in ``fee_schedules_from_mapping``)
---------------------------------------------------------------------------------------------------
Amounts and rates are decimal *strings* in natural units ("-0.1" bp, "0.0030" currency,
"1000.00" billing currency): exact and unambiguous; floats and bare integers are refused. At
most 6 decimals for bp and per-contract amounts, the currency's minor units for monthly fees.
``effective_from`` is a TOML date (00:00 UTC), an offset date-time, or integer ns. Unknown keys,
missing classes and bad values are refused with a message naming the version and the field.
See ``DEFAULT_FEE_SCHEDULE_TOML`` for a complete example.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import struct
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from matching.instruments import CURRENCY_MINOR_UNITS, Instrument
from matching.types import AssetClass, Trade

__all__ = [
    "DEFAULT_FEE_SCHEDULES",
    "DEFAULT_FEE_SCHEDULE_TOML",
    "FEE_CLASSES",
    "MICRO_BP_PER_BP",
    "MICRO_PER_UNIT",
    "VOLUME_PER_CONTRACT",
    "ClassSchedule",
    "FeeEngine",
    "FeeEngineError",
    "FeeRecord",
    "FeeSchedule",
    "FeeScheduleError",
    "FeeScheduleSet",
    "FixedFeeCharge",
    "Liquidity",
    "Month",
    "PerContractFees",
    "PerContractTier",
    "TradeFees",
    "VenueLossError",
    "ceil_div",
    "contract_volume",
    "fee_schedules_from_mapping",
    "fee_schedules_from_toml",
    "fill_fee",
    "fill_fee_exact",
    "format_minor",
    "load_fee_schedules",
]

MICRO_BP_PER_BP = 1_000_000  # rates: 1 ubp = 10**-6 bp = 10**-10 of notional
MICRO_PER_UNIT = 1_000_000  # per-contract fees: micro-units of the currency
VOLUME_PER_CONTRACT = 10**12  # contract volume unit: 10**-12 contract (quantity_scale <= 12)
NS_PER_DAY = 86_400 * 10**9

#: Participant classes that trade and pay fees (hub.config.ParticipantClass values).
FEE_CLASSES: tuple[str, ...] = ("scalper", "institution", "market_maker")
_CANONICAL_CLASS = {c: c for c in FEE_CLASSES}
_ASSET_CLASS_BY_NAME = {ac.name.lower(): ac for ac in AssetClass}

_MAX_RATE_UBP = 10_000 * MICRO_BP_PER_BP  # 100 % of notional
_MAX_PER_CONTRACT_MICRO = 10**6 * MICRO_PER_UNIT  # 1,000,000 currency units a contract
_MAX_MONTHLY_UNITS = 10**12


class FeeScheduleError(ValueError):
    """A fee schedule that cannot be loaded; the message names the version and the field."""


class VenueLossError(FeeScheduleError):
    """A schedule under which the venue could pay out more than it collects on some trade."""


class FeeEngineError(RuntimeError):
    """A call the fee engine cannot honour (unknown class, time going back a month, no schedule)."""


class Liquidity(StrEnum):
    MAKER = "maker"  # the resting order: added liquidity
    TAKER = "taker"  # the incoming order: removed liquidity


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer ceiling of numerator / denominator (denominator > 0): the venue-favouring rounding."""
    return -((-numerator) // denominator)


def format_minor(amount: int, currency: str) -> str:
    """Minor units as a decimal string in currency units: 123456 USD -> '1234.56', -5 -> '-0.05'."""
    return _format_scaled(amount, CURRENCY_MINOR_UNITS[currency])


def _format_scaled(value: int, decimals: int, *, trim: bool = False) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    if not decimals:
        return f"{sign}{whole}"
    text = f"{sign}{whole}.{frac:0{decimals}d}"
    if trim:
        text = text.rstrip("0").rstrip(".")
    return text


# -- TIME -------------------------------------------------------------------------------------

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Month(NamedTuple):
    """A UTC calendar month; orders chronologically."""

    year: int
    month: int

    @staticmethod
    def of(hub_time_ns: int) -> Month:
        d = date.fromordinal(_EPOCH_ORDINAL + hub_time_ns // NS_PER_DAY)
        return Month(d.year, d.month)

    @staticmethod
    def parse(label: str) -> Month:
        """'2026-02' -> Month(2026, 2)."""
        m = re.fullmatch(r"(\d{4})-(\d{2})", label)
        if m is None or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) <= 2261:
            raise ValueError(f"month {label!r} is not YYYY-MM within hub time (1970-01 to 2261-12)")
        return Month(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start_ns(self) -> int:
        """Hub time of 00:00:00 UTC on the first day of the month."""
        return (date(self.year, self.month, 1).toordinal() - _EPOCH_ORDINAL) * NS_PER_DAY

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


def _datetime_ns(dt: datetime) -> int:
    delta: timedelta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


# -- SCHEDULE ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerContractTier:
    """Discount tier: applies when the previous month's contract volume is strictly above ``above``."""

    above: int  # whole contracts
    maker_micro: int  # micro-units of the instrument currency per contract
    taker_micro: int


@dataclass(frozen=True, slots=True)
class PerContractFees:
    """Per-contract fees of one participant class on one asset class: base tier plus discount tiers."""

    maker_micro: int
    taker_micro: int
    tiers: tuple[PerContractTier, ...] = ()

    def rates(self, prev_volume: int) -> tuple[int, int, int]:
        """(tier, maker_micro, taker_micro) for a previous-month volume in 10**-12 contract units.

        Tier 0 is the base tier; tier i >= 1 is ``tiers[i - 1]``."""
        tier = 0
        for i, t in enumerate(self.tiers):
            if prev_volume > t.above * VOLUME_PER_CONTRACT:
                tier = i + 1
            else:
                break
        if tier == 0:
            return 0, self.maker_micro, self.taker_micro
        t = self.tiers[tier - 1]
        return tier, t.maker_micro, t.taker_micro

    def best(self) -> tuple[int, int]:
        """The most favourable (lowest) maker and taker per-contract fee over all tiers."""
        return (min([self.maker_micro, *(t.maker_micro for t in self.tiers)]),
                min([self.taker_micro, *(t.taker_micro for t in self.tiers)]))


@dataclass(frozen=True, slots=True)
class ClassSchedule:
    """Fees of one participant class. Rates: ubp of notional; per_contract keyed by asset class."""

    monthly_fee_minor: int = 0  # minor units of the schedule's billing currency
    maker_ubp: int = 0
    taker_ubp: int = 0
    per_contract: Mapping[AssetClass, PerContractFees] = field(default_factory=dict)

    def rate_ubp(self, role: Liquidity) -> int:
        return self.maker_ubp if role is Liquidity.MAKER else self.taker_ubp

    def per_contract_rates(self, asset_class: AssetClass, role: Liquidity, prev_volume: int) -> tuple[int, int, int]:
        """(tier, per-contract micro-units, base-tier per-contract micro-units) for one side."""
        pc = self.per_contract.get(asset_class)
        if pc is None:
            return 0, 0, 0
        tier, maker, taker = pc.rates(prev_volume)
        if role is Liquidity.MAKER:
            return tier, maker, pc.maker_micro
        return tier, taker, pc.taker_micro


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """One version of the fee schedule; ``classes`` has exactly the keys of ``FEE_CLASSES``."""

    version: str
    effective_from_ns: int
    classes: Mapping[str, ClassSchedule]
    billing_currency: str = "USD"
    allow_venue_loss: bool = False

    def validate(self) -> FeeSchedule:
        where = f"fee schedule {self.version!r}"
        if not self.version or len(self.version) > 64 or not self.version.isprintable():
            raise FeeScheduleError(f"{where}: id must be 1-64 printable characters")
        if self.billing_currency not in CURRENCY_MINOR_UNITS:
            raise FeeScheduleError(
                f"{where}: billing_currency {self.billing_currency!r} is not one of {sorted(CURRENCY_MINOR_UNITS)}")
        if set(self.classes) != set(FEE_CLASSES):
            raise FeeScheduleError(f"{where}: needs exactly the classes {list(FEE_CLASSES)}, got {sorted(self.classes)}")
        for name, cs in self.classes.items():
            w = f"{where}: {name}"
            if not 0 <= cs.monthly_fee_minor <= _MAX_MONTHLY_UNITS * 10 ** CURRENCY_MINOR_UNITS[self.billing_currency]:
                raise FeeScheduleError(f"{w}.monthly_fee must be in 0..{_MAX_MONTHLY_UNITS}")
            for label, rate in (("maker_bp", cs.maker_ubp), ("taker_bp", cs.taker_ubp)):
                if abs(rate) > _MAX_RATE_UBP:
                    raise FeeScheduleError(f"{w}.{label} must be within +-10000 bp")
            for ac, pc in cs.per_contract.items():
                wp = f"{w}.per_contract.{ac.name.lower()}"
                amounts = [pc.maker_micro, pc.taker_micro, *(x for t in pc.tiers for x in (t.maker_micro, t.taker_micro))]
                if any(abs(a) > _MAX_PER_CONTRACT_MICRO for a in amounts):
                    raise FeeScheduleError(f"{wp}: per-contract amounts must be within +-1000000")
                prev_above, prev_maker, prev_taker = -1, pc.maker_micro, pc.taker_micro
                for t in pc.tiers:
                    if t.above <= prev_above or t.above < 0:
                        raise FeeScheduleError(f"{wp}.tiers: 'above' must be non-negative and strictly increasing")
                    if t.maker_micro > prev_maker or t.taker_micro > prev_taker:
                        raise FeeScheduleError(
                            f"{wp}.tiers: tier above {t.above} charges more than the tier below it (tiers are discounts)")
                    prev_above, prev_maker, prev_taker = t.above, t.maker_micro, t.taker_micro
        violations = self.venue_loss_violations()
        if violations and not self.allow_venue_loss:
            shown = "; ".join(violations[:4]) + (f"; and {len(violations) - 4} more" if len(violations) > 4 else "")
            raise VenueLossError(
                f"{where} lets the venue pay out more than it collects on some trades: {shown}. "
                f"Set allow_venue_loss = true in this version to accept it.")
        return self

    def venue_loss_violations(self) -> list[str]:
        """Every (maker class, taker class[, asset class]) combination that can make venue net < 0."""
        out: list[str] = []
        for m in FEE_CLASSES:
            for t in FEE_CLASSES:
                mc, tc = self.classes[m], self.classes[t]
                total = mc.maker_ubp + tc.taker_ubp
                if total < 0:
                    out.append(f"maker {m} {_bp(mc.maker_ubp)} bp + taker {t} {_bp(tc.taker_ubp)} bp = {_bp(total)} bp")
                for ac in AssetClass:
                    mpc, tpc = mc.per_contract.get(ac), tc.per_contract.get(ac)
                    best_m = mpc.best()[0] if mpc else 0
                    best_t = tpc.best()[1] if tpc else 0
                    if best_m + best_t < 0:
                        out.append(f"{ac.name.lower()} per contract: maker {m} best tier {_micro(best_m)} + "
                                   f"taker {t} best tier {_micro(best_t)} = {_micro(best_m + best_t)}")
        return out

    def fee_for(self, instrument: Instrument, participant_class: str, role: Liquidity, price: int, quantity: int,
                prev_volume: int = 0) -> tuple[int, int, int]:
        """(fee, base-tier fee, tier) of one side of a fill; prev_volume in 10**-12 contract units.

        A pure function of its arguments: ``FeeEngine.on_trade`` gives the same numbers."""
        cls = _CANONICAL_CLASS.get(participant_class)
        if cls is None:
            raise FeeEngineError(f"class {participant_class!r} pays no fees (expected one of {list(FEE_CLASSES)})")
        cs = self.classes[cls]
        rate = cs.rate_ubp(role)
        tier, pc, base_pc = cs.per_contract_rates(instrument.asset_class, role, prev_volume)
        fee = fill_fee(instrument, price, quantity, rate, pc)
        base = fee if pc == base_pc else fill_fee(instrument, price, quantity, rate, base_pc)
        return fee, base, tier

    def canonical(self) -> bytes:
        parts = [_s(self.version), _Q.pack(self.effective_from_ns), _s(self.billing_currency),
                 _Q.pack(int(self.allow_venue_loss))]
        for name in FEE_CLASSES:
            cs = self.classes[name]
            parts += [_s(name), _Q.pack(cs.monthly_fee_minor), _Q.pack(cs.maker_ubp), _Q.pack(cs.taker_ubp)]
            for ac in sorted(cs.per_contract):
                pc = cs.per_contract[ac]
                parts += [_Q.pack(int(ac)), _Q.pack(pc.maker_micro), _Q.pack(pc.taker_micro), _Q.pack(len(pc.tiers))]
                for t in pc.tiers:
                    parts += [_Q.pack(t.above), _Q.pack(t.maker_micro), _Q.pack(t.taker_micro)]
            parts.append(_Q.pack(-1))
        return b"".join(parts)


def _bp(ubp: int) -> str:
    return _format_scaled(ubp, 6, trim=True)


def _micro(micro: int) -> str:
    return _format_scaled(micro, 6, trim=True)


_Q = struct.Struct("<q")


def _s(text: str) -> bytes:
    raw = text.encode()
    return _Q.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True)
class FeeScheduleSet:
    """Schedule versions ordered by strictly increasing ``effective_from_ns``."""

    versions: tuple[FeeSchedule, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise FeeScheduleError("a fee schedule set needs at least one version")
        ids: set[str] = set()
        for i, v in enumerate(self.versions):
            v.validate()
            if v.version in ids:
                raise FeeScheduleError(f"fee schedule {v.version!r}: duplicate version id")
            ids.add(v.version)
            if i and v.effective_from_ns <= self.versions[i - 1].effective_from_ns:
                raise FeeScheduleError(
                    f"fee schedule {v.version!r}: effective_from must be later than that of "
                    f"{self.versions[i - 1].version!r} (versions in chronological order)")

    def index_at(self, hub_time_ns: int) -> int:
        i = bisect.bisect_right([v.effective_from_ns for v in self.versions], hub_time_ns) - 1
        if i < 0:
            raise FeeEngineError(f"no fee schedule in force at hub time {hub_time_ns} "
                                 f"(the first, {self.versions[0].version!r}, starts at {self.versions[0].effective_from_ns})")
        return i

    def schedule_at(self, hub_time_ns: int) -> FeeSchedule:
        """The version in force at ``hub_time_ns``: effective_from <= t < the next version's."""
        return self.versions[self.index_at(hub_time_ns)]

    def by_version(self, version: str) -> FeeSchedule:
        for v in self.versions:
            if v.version == version:
                return v
        raise KeyError(version)

    def digest(self) -> bytes:
        h = hashlib.sha256(b"hub-fee-schedules/1\n")
        for v in self.versions:
            h.update(v.canonical())
        return h.digest()


# -- LOADING ----------------------------------------------------------------------------------

_DECIMAL = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?")


def _scaled(value: Any, decimals: int, where: str, unit: str) -> int:
    if isinstance(value, float):
        raise FeeScheduleError(f"{where}: floats are not exact; write it as a decimal string, e.g. \"{value!r}\" ({unit})")
    if not isinstance(value, str):
        raise FeeScheduleError(f"{where}: must be a decimal string in {unit}, e.g. \"0.1\", got {value!r}")
    m = _DECIMAL.fullmatch(value)
    if m is None:
        raise FeeScheduleError(f"{where}: {value!r} is not a decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac) > decimals:
        raise FeeScheduleError(f"{where}: {value!r} has more than {decimals} decimals ({unit})")
    magnitude = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    return -magnitude if sign == "-" else magnitude


def _effective_from(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise FeeScheduleError(f"{where}: effective_from must be a date, an offset date-time or integer ns")
    if isinstance(value, int):
        ns = value
    elif isinstance(value, str):
        try:
            parsed: date = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            raise FeeScheduleError(f"{where}: effective_from {value!r} is not an ISO date or date-time") from None
        return _effective_from(parsed, where)
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise FeeScheduleError(f"{where}: effective_from {value} has no UTC offset; add one, e.g. Z")
        ns = _datetime_ns(value)
    elif isinstance(value, date):
        ns = (value.toordinal() - _EPOCH_ORDINAL) * NS_PER_DAY
    else:
        raise FeeScheduleError(f"{where}: effective_from must be a date, an offset date-time or integer ns, got {value!r}")
    if not 0 <= ns < 2**63:
        raise FeeScheduleError(f"{where}: effective_from must be at or after 1970-01-01T00:00Z")
    return ns


def _table(raw: Any, where: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise FeeScheduleError(f"{where} must be a table")
    unknown = set(raw) - set(allowed)
    if unknown:
        raise FeeScheduleError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")
    missing = set(required) - set(raw)
    if missing:
        raise FeeScheduleError(f"{where}: missing keys {sorted(missing)}")
    return dict(raw)


def _per_contract(raw: Any, where: str) -> PerContractFees:
    t = _table(raw, where, {"maker", "taker", "tiers"}, {"maker", "taker"})
    tiers_raw = t.get("tiers", [])
    if not isinstance(tiers_raw, list):
        raise FeeScheduleError(f"{where}.tiers must be an array of tables")
    tiers = []
    for i, tr in enumerate(tiers_raw):
        w = f"{where}.tiers[{i}]"
        tt = _table(tr, w, {"above", "maker", "taker"}, {"above", "maker", "taker"})
        above = tt["above"]
        if isinstance(above, bool) or not isinstance(above, int):
            raise FeeScheduleError(f"{w}.above must be an integer number of contracts, got {above!r}")
        tiers.append(PerContractTier(above=above,
                                     maker_micro=_scaled(tt["maker"], 6, f"{w}.maker", "currency per contract"),
                                     taker_micro=_scaled(tt["taker"], 6, f"{w}.taker", "currency per contract")))
    return PerContractFees(maker_micro=_scaled(t["maker"], 6, f"{where}.maker", "currency per contract"),
                           taker_micro=_scaled(t["taker"], 6, f"{where}.taker", "currency per contract"),
                           tiers=tuple(tiers))


def _class_schedule(raw: Any, where: str, billing_currency: str) -> ClassSchedule:
    t = _table(raw, where, {"monthly_fee", "maker_bp", "taker_bp", "per_contract"}, {"maker_bp", "taker_bp"})
    pcs_raw = _table(t.get("per_contract", {}), f"{where}.per_contract", set(_ASSET_CLASS_BY_NAME))
    per_contract = {_ASSET_CLASS_BY_NAME[name]: _per_contract(v, f"{where}.per_contract.{name}")
                    for name, v in pcs_raw.items()}
    minor = CURRENCY_MINOR_UNITS.get(billing_currency, 2)
    return ClassSchedule(
        monthly_fee_minor=_scaled(t.get("monthly_fee", "0"), minor, f"{where}.monthly_fee", billing_currency),
        maker_ubp=_scaled(t["maker_bp"], 6, f"{where}.maker_bp", "bp"),
        taker_ubp=_scaled(t["taker_bp"], 6, f"{where}.taker_bp", "bp"),
        per_contract=per_contract)


def _version(raw: Any, index: int) -> FeeSchedule:
    vid = raw.get("id", f"<version {index}>") if isinstance(raw, Mapping) else f"<version {index}>"
    where = f"fee schedule {vid!r}"
    t = _table(raw, where, {"id", "effective_from", "billing_currency", "allow_venue_loss", *FEE_CLASSES},
               {"id", "effective_from", *FEE_CLASSES})
    if not isinstance(t["id"], str):
        raise FeeScheduleError(f"{where}: id must be a string")
    currency = t.get("billing_currency", "USD")
    if not isinstance(currency, str):
        raise FeeScheduleError(f"{where}: billing_currency must be a string")
    allow = t.get("allow_venue_loss", False)
    if not isinstance(allow, bool):
        raise FeeScheduleError(f"{where}: allow_venue_loss must be true or false")
    return FeeSchedule(
        version=t["id"],
        effective_from_ns=_effective_from(t["effective_from"], where),
        billing_currency=currency,
        allow_venue_loss=allow,
        classes={name: _class_schedule(t[name], f"{where}: {name}", currency) for name in FEE_CLASSES},
    ).validate()


def fee_schedules_from_mapping(doc: Mapping[str, Any]) -> FeeScheduleSet:
    """Build a schedule set from a TOML-shaped mapping: ``{"version": [ {...}, ... ]}``."""
    _table(doc, "fee schedule file", {"version"}, {"version"})
    versions = doc["version"]
    if not isinstance(versions, list) or not versions:
        raise FeeScheduleError("fee schedule file: expected one or more [[version]] tables")
    return FeeScheduleSet(tuple(_version(v, i) for i, v in enumerate(versions)))


def fee_schedules_from_toml(text: str) -> FeeScheduleSet:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FeeScheduleError(f"fee schedule TOML: {exc}") from exc
    return fee_schedules_from_mapping(doc)


def load_fee_schedules(path: str | Path) -> FeeScheduleSet:
    """Read a TOML file of ``[[version]]`` tables (see ``DEFAULT_FEE_SCHEDULE_TOML``)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise FeeScheduleError(f"cannot read fee schedules from {path}: {exc}") from exc
    try:
        return fee_schedules_from_toml(text)
    except FeeScheduleError as exc:
        raise type(exc)(f"{path}: {exc}") from None


#: The built-in schedule, in the file format (it doubles as the format's reference example).
DEFAULT_FEE_SCHEDULE_TOML = """\
[[version]]
id = "default-v1"
effective_from = 1970-01-01      # a TOML date is 00:00 UTC; an offset date-time or integer ns also work
billing_currency = "USD"         # currency of monthly fixed fees
allow_venue_loss = false         # refuse the version if any trade could cost the venue money

[version.scalper]
monthly_fee = "0"
maker_bp = "-0.1"                # 0.1 bp on every fill, less a 0.2 bp rebate for adding liquidity
taker_bp = "0.1"                 # 0.1 bp on every fill; covers the largest maker rebate (0.1 bp)

[version.institution]
monthly_fee = "1000.00"
maker_bp = "0"
taker_bp = "0.1"

[version.institution.per_contract.equity]   # per share, tiered on last month's equity volume
maker = "0.0010"
taker = "0.0030"
tiers = [
    { above = 10000, maker = "0.0008", taker = "0.0025" },
    { above = 100000, maker = "0.0005", taker = "0.0020" },
]

[version.institution.per_contract.future]   # per contract, tiered on last month's futures volume
maker = "0.50"
taker = "0.75"
tiers = [
    { above = 10000, maker = "0.40", taker = "0.60" },
    { above = 50000, maker = "0.30", taker = "0.45" },
]

[version.market_maker]
monthly_fee = "0"
maker_bp = "-0.1"
taker_bp = "0.2"
"""

DEFAULT_FEE_SCHEDULES: FeeScheduleSet = fee_schedules_from_toml(DEFAULT_FEE_SCHEDULE_TOML)


# -- ONE FILL ---------------------------------------------------------------------------------


def _fill_terms(instrument: Instrument, price: int, quantity: int, rate_ubp: int,
                per_contract_micro: int) -> tuple[int, int]:
    mu = CURRENCY_MINOR_UNITS[instrument.currency]
    numerator = (price * quantity * instrument.contract_multiplier * rate_ubp
                 + quantity * per_contract_micro * 10 ** (instrument.price_scale + 4))
    return numerator, 10 ** (instrument.price_scale + instrument.quantity_scale - mu + 10)


def fill_fee_exact(instrument: Instrument, price: int, quantity: int, rate_ubp: int, per_contract_micro: int) -> Fraction:
    """The exact (unrounded) fee of one side of a fill, in minor units of the instrument currency."""
    return Fraction(*_fill_terms(instrument, price, quantity, rate_ubp, per_contract_micro))


def fill_fee(instrument: Instrument, price: int, quantity: int, rate_ubp: int, per_contract_micro: int) -> int:
    """The fee of one side of a fill: the exact fee rounded once toward +infinity (venue-favouring)."""
    numerator, denominator = _fill_terms(instrument, price, quantity, rate_ubp, per_contract_micro)
    return -((-numerator) // denominator)


def contract_volume(instrument: Instrument, quantity: int) -> int:
    """Contracts in ``quantity`` raw units, in 10**-12 contract units (exact for any quantity_scale <= 12)."""
    return quantity * 10 ** (12 - instrument.quantity_scale)


# -- RECORDS ----------------------------------------------------------------------------------


class FeeRecord(NamedTuple):
    """The fee of one side of one fill: what goes on the execution report and into the ledger.

    ``fee`` is in minor units of ``currency`` (positive = the participant pays, negative = rebate);
    ``base_fee`` is what the base (undiscounted) tier would have charged, so ``discount`` =
    base_fee - fee >= 0. ``notional_raw`` is worth 10**-notional_scale currency (exact)."""

    trade_id: int
    hub_time_ns: int
    participant_id: str
    participant_class: str
    role: Liquidity
    instrument_id: int
    symbol: str
    asset_class: AssetClass
    currency: str
    quantity: int
    quantity_scale: int
    notional_raw: int
    notional_scale: int
    fee: int
    base_fee: int
    schedule_version: str
    tier: int

    @property
    def discount(self) -> int:
        return self.base_fee - self.fee

    @property
    def contracts(self) -> int:
        """Contract volume of this fill in 10**-12 contract units."""
        return self.quantity * 10 ** (12 - self.quantity_scale)

    def to_dict(self) -> dict[str, int | str]:
        return {
            "trade_id": self.trade_id, "hub_time_ns": self.hub_time_ns, "participant_id": self.participant_id,
            "participant_class": self.participant_class, "role": self.role.value, "instrument_id": self.instrument_id,
            "symbol": self.symbol, "asset_class": self.asset_class.name.lower(), "currency": self.currency,
            "quantity": self.quantity, "quantity_scale": self.quantity_scale, "notional_raw": self.notional_raw,
            "notional_scale": self.notional_scale, "fee": self.fee, "base_fee": self.base_fee,
            "schedule_version": self.schedule_version, "tier": self.tier,
        }

    def canonical_json(self) -> str:
        """``to_dict()`` as canonical JSON (sorted keys, no spaces, UTF-8 as is): exactly what
        ``json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
        writes, in a quarter of the time (every trade journals two records; the generic encoder
        takes about 5 us each). The ints are written as json writes an int, the strings through
        json's own string encoder; a record holding anything else takes the generic path."""
        if not (int is type(self.base_fee) is type(self.fee) is type(self.hub_time_ns) is type(self.instrument_id)
                is type(self.notional_raw) is type(self.notional_scale) is type(self.quantity)
                is type(self.quantity_scale) is type(self.tier) is type(self.trade_id)):
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        q = _json_string
        return _FEE_RECORD_JSON % (
            q(self.asset_class.name.lower()), self.base_fee, q(self.currency), self.fee, self.hub_time_ns,
            self.instrument_id, self.notional_raw, self.notional_scale, q(self.participant_class),
            q(self.participant_id), self.quantity, self.quantity_scale, q(self.role.value),
            q(self.schedule_version), q(self.symbol), self.tier, self.trade_id)

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> FeeRecord:
        values = dict(raw)
        if set(values) != set(FeeRecord._fields):
            raise ValueError(f"fee record fields {sorted(values)} are not {sorted(FeeRecord._fields)}")
        values["role"] = Liquidity(values["role"])
        values["asset_class"] = _ASSET_CLASS_BY_NAME[values["asset_class"]]
        return FeeRecord(**values)


#: ``FeeRecord.to_dict`` in canonical JSON, keys sorted (``FeeRecord.canonical_json``).
_FEE_RECORD_JSON = ('{"asset_class":%s,"base_fee":%d,"currency":%s,"fee":%d,"hub_time_ns":%d,"instrument_id":%d,'
                    '"notional_raw":%d,"notional_scale":%d,"participant_class":%s,"participant_id":%s,'
                    '"quantity":%d,"quantity_scale":%d,"role":%s,"schedule_version":%s,"symbol":%s,"tier":%d,'
                    '"trade_id":%d}')
_json_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes for a str


@dataclass(frozen=True, slots=True)
class FixedFeeCharge:
    """A monthly fixed fee that fell due; ``hub_time_ns`` is the month's start, amount in minor units."""

    participant_id: str
    participant_class: str
    month: Month
    hub_time_ns: int
    currency: str
    amount: int
    schedule_version: str

    def to_dict(self) -> dict[str, int | str]:
        return {"participant_id": self.participant_id, "participant_class": self.participant_class,
                "month": self.month.label, "hub_time_ns": self.hub_time_ns, "currency": self.currency,
                "amount": self.amount, "schedule_version": self.schedule_version}

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> FixedFeeCharge:
        values = dict(raw)
        if set(values) != set(FixedFeeCharge.__slots__):  # type: ignore[attr-defined]
            raise ValueError(f"fixed fee fields {sorted(values)} are not {sorted(FixedFeeCharge.__slots__)}")  # type: ignore[attr-defined]
        values["month"] = Month.parse(values["month"])
        return FixedFeeCharge(**values)


class TradeFees(NamedTuple):
    """Result of ``FeeEngine.on_trade``: both sides' fee records and any fixed fees that fell due."""

    maker: FeeRecord
    taker: FeeRecord
    fixed_charges: tuple[FixedFeeCharge, ...] = ()

    @property
    def maker_fee(self) -> int:
        return self.maker.fee

    @property
    def taker_fee(self) -> int:
        return self.taker.fee

    @property
    def venue_net(self) -> int:
        """What the venue keeps from this trade (>= 0 unless a version allows venue loss)."""
        return self.maker.fee + self.taker.fee

    @property
    def schedule_version(self) -> str:
        return self.maker.schedule_version

    @property
    def tiers(self) -> tuple[int, int]:
        return self.maker.tier, self.taker.tier


# -- ENGINE -----------------------------------------------------------------------------------


class _InstrumentTerms(NamedTuple):
    instrument: Instrument
    notional_factor: int  # contract_multiplier
    contract_factor: int  # 10**(price_scale + 4)
    denominator: int  # 10**(ps + qs - mu + 10)
    volume_factor: int  # 10**(12 - qs)
    notional_scale: int


class FeeEngine:
    """Deterministic, replayable fee state: per participant and asset class contract volume of the
    current and previous UTC month, registered participants and the last month each was billed.

    Drive it in sequence order from one thread; the same calls give the same results and digest."""

    def __init__(self, schedules: FeeScheduleSet = DEFAULT_FEE_SCHEDULES) -> None:
        self.schedules = schedules
        self._month: Month | None = None
        self._month_lo = 0
        self._month_hi = -1
        self._classes: dict[str, str] = {}
        self._billed: dict[str, Month] = {}  # last month whose fixed fee was charged
        self._unbilled: set[str] = set()
        self._volume: dict[tuple[str, AssetClass], int] = {}  # current month, 10**-12 contracts
        self._prev_volume: dict[tuple[str, AssetClass], int] = {}  # previous calendar month
        self._terms: dict[int, _InstrumentTerms] = {}
        self._efrom = [v.effective_from_ns for v in schedules.versions]
        self._ver_lo = 0
        self._ver_hi = -1
        self._ver: FeeSchedule | None = None

    # -- PARTICIPANTS AND TIME -------------------------------------------------------------

    def register_participant(self, participant_id: str, participant_class: str) -> None:
        """Make a participant known (so its monthly fixed fee is charged even in months it does not
        trade); the fee for the current month falls due at the next ``advance``/``on_trade``.
        Re-registering with another class changes the class for later charges."""
        cls = _CANONICAL_CLASS.get(participant_class)
        if cls is None:
            raise FeeEngineError(f"participant {participant_id!r}: class {participant_class!r} pays no fees "
                                 f"(expected one of {list(FEE_CLASSES)})")
        if participant_id not in self._classes:
            self._unbilled.add(participant_id)
        self._classes[participant_id] = cls

    def set_participants(self, classes: Mapping[str, str], hub_time_ns: int | None = None) -> None:
        """Make exactly these participants (id -> fee class) the registered ones, as a hub starting
        with that configuration registers them: new ones as ``register_participant``, a changed
        class for later charges, and ones no longer configured are billed no more (what was charged
        stays charged; one configured again is billed like a newcomer, not for the months between)."""
        for pid in [pid for pid in self._classes if pid not in classes]:
            del self._classes[pid]
            self._unbilled.discard(pid)
        for pid, cls in classes.items():
            last = self._billed.get(pid)
            if pid not in self._classes and last is not None and hub_time_ns is not None:
                # Configured again (at ``hub_time_ns``): billed from that month, not for the months it
                # was away (nor twice for a month it was billed already).
                self._billed[pid] = max(last, Month.of(hub_time_ns).previous())
            self.register_participant(pid, cls)

    def advance(self, hub_time_ns: int) -> tuple[FixedFeeCharge, ...]:
        """Move the engine to ``hub_time_ns``: roll the month if it changed and return the monthly
        fixed fees that fell due (each registered participant, every month not yet billed)."""
        if not self._month_lo <= hub_time_ns < self._month_hi:
            self._roll(hub_time_ns)
        if self._unbilled:
            return self._bill()
        return ()

    def _roll(self, hub_time_ns: int) -> None:
        month = Month.of(hub_time_ns)
        if self._month is not None:
            if month < self._month:
                raise FeeEngineError(f"hub time {hub_time_ns} is in {month.label}, before the current month "
                                     f"{self._month.label}: fee state cannot go back a month")
            if month == self._month:  # same month, earlier instant: nothing to roll
                return
            self._prev_volume = self._volume if month == self._month.next() else {}
            self._volume = {}
            self._unbilled.update(self._classes)
        self._month = month
        self._month_lo = month.start_ns
        self._month_hi = month.next().start_ns

    def _bill(self) -> tuple[FixedFeeCharge, ...]:
        assert self._month is not None
        charges = []
        for pid in sorted(self._unbilled):
            last = self._billed.get(pid)
            month = self._month if last is None else last.next()
            while month <= self._month:
                schedule = self._schedule_for_month(month)
                amount = schedule.classes[self._classes[pid]].monthly_fee_minor
                if amount:
                    charges.append(FixedFeeCharge(participant_id=pid, participant_class=self._classes[pid], month=month,
                                                  hub_time_ns=month.start_ns, currency=schedule.billing_currency,
                                                  amount=amount, schedule_version=schedule.version))
                month = month.next()
            self._billed[pid] = self._month
        self._unbilled.clear()
        return tuple(charges)

    def _schedule_for_month(self, month: Month) -> FeeSchedule:
        """The version in force at the month's first instant, or the first version if it starts later."""
        i = bisect.bisect_right(self._efrom, month.start_ns) - 1
        return self.schedules.versions[max(i, 0)]

    # -- FILLS -------------------------------------------------------------------------------

    def _instrument_terms(self, instrument: Instrument) -> _InstrumentTerms:
        terms = self._terms.get(instrument.instrument_id)
        if terms is None or terms.instrument is not instrument:
            mu = CURRENCY_MINOR_UNITS[instrument.currency]
            ps, qs = instrument.price_scale, instrument.quantity_scale
            terms = _InstrumentTerms(instrument, instrument.contract_multiplier, 10 ** (ps + 4),
                                     10 ** (ps + qs - mu + 10), 10 ** (12 - qs), ps + qs)
            self._terms[instrument.instrument_id] = terms
        return terms

    def _schedule(self, hub_time_ns: int) -> FeeSchedule:
        if not self._ver_lo <= hub_time_ns < self._ver_hi:
            i = self.schedules.index_at(hub_time_ns)
            self._ver = self.schedules.versions[i]
            self._ver_lo = self._efrom[i]
            self._ver_hi = self._efrom[i + 1] if i + 1 < len(self._efrom) else 2**63
        assert self._ver is not None
        return self._ver

    def on_trade(self, hub_time_ns: int, instrument: Instrument, trade: Trade, *, maker_id: str, maker_class: str,
                 taker_id: str, taker_class: str) -> TradeFees:
        """Fees of both sides of one trade at hub time ``hub_time_ns`` (the command's sequenced time).

        Uses ``trade.trade_id``, ``trade.price`` and ``trade.quantity``. The tier of each side comes
        from that participant's contract volume in the instrument's asset class in the previous
        UTC month; this fill then adds to both participants' current-month volume."""
        if trade.instrument_id != instrument.instrument_id:
            raise FeeEngineError(f"trade {trade.trade_id} is for instrument {trade.instrument_id}, "
                                 f"not {instrument.instrument_id} ({instrument.symbol})")
        for pid, cls in ((maker_id, maker_class), (taker_id, taker_class)):
            if self._classes.get(pid) != cls:
                self.register_participant(pid, cls)
        fixed = self.advance(hub_time_ns)
        schedule = self._schedule(hub_time_ns)
        terms = self._instrument_terms(instrument)
        price, quantity = trade.price, trade.quantity
        notional = price * quantity * terms.notional_factor
        contract_part = quantity * terms.contract_factor
        denominator = terms.denominator
        volume = quantity * terms.volume_factor
        asset_class = instrument.asset_class
        records = []
        for pid, role in ((maker_id, Liquidity.MAKER), (taker_id, Liquidity.TAKER)):
            cls = self._classes[pid]
            cs = schedule.classes[cls]
            rate = cs.maker_ubp if role is Liquidity.MAKER else cs.taker_ubp
            key = (pid, asset_class)
            tier, pc, base_pc = cs.per_contract_rates(asset_class, role, self._prev_volume.get(key, 0))
            fee = -((-(notional * rate + contract_part * pc)) // denominator)
            base = fee if pc == base_pc else -((-(notional * rate + contract_part * base_pc)) // denominator)
            self._volume[key] = self._volume.get(key, 0) + volume
            records.append(FeeRecord(trade.trade_id, hub_time_ns, pid, cls, role, instrument.instrument_id,
                                     instrument.symbol, asset_class, instrument.currency, quantity,
                                     instrument.quantity_scale, notional, terms.notional_scale, fee, base,
                                     schedule.version, tier))
        return TradeFees(records[0], records[1], fixed)

    # -- QUERIES -----------------------------------------------------------------------------

    @property
    def month(self) -> Month | None:
        return self._month

    def volume(self, participant_id: str, asset_class: AssetClass, *, previous: bool = False) -> int:
        """Contract volume (10**-12 contract units) this month, or in the previous month."""
        return (self._prev_volume if previous else self._volume).get((participant_id, asset_class), 0)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (for checkpoints); ``restore`` rebuilds an equal engine."""
        return {
            "schedules_sha256": self.schedules.digest().hex(),
            "month": self._month.label if self._month else None,
            "participants": {pid: {"class": cls, "billed": self._billed[pid].label if pid in self._billed else None}
                             for pid, cls in sorted(self._classes.items())},
            "volume": _volume_rows(self._volume),
            "prev_volume": _volume_rows(self._prev_volume),
        }

    @staticmethod
    def restore(schedules: FeeScheduleSet, snapshot: Mapping[str, Any]) -> FeeEngine:
        if snapshot["schedules_sha256"] != schedules.digest().hex():
            raise FeeEngineError("snapshot was taken under a different fee schedule set")
        engine = FeeEngine(schedules)
        if snapshot["month"] is not None:
            month = Month.parse(snapshot["month"])
            engine._roll(month.start_ns)
        for pid, entry in snapshot["participants"].items():
            engine._classes[pid] = _CANONICAL_CLASS[entry["class"]]
            if entry["billed"] is not None:
                engine._billed[pid] = Month.parse(entry["billed"])
            if engine._billed.get(pid) != engine._month:
                engine._unbilled.add(pid)
        engine._volume = {(pid, _ASSET_CLASS_BY_NAME[ac]): v for pid, ac, v in snapshot["volume"]}
        engine._prev_volume = {(pid, _ASSET_CLASS_BY_NAME[ac]): v for pid, ac, v in snapshot["prev_volume"]}
        return engine

    def state_digest(self) -> bytes:
        """SHA-256 over a canonical encoding of the state and the schedule set's digest."""
        h = hashlib.sha256(b"hub-fee-engine/1\n")
        h.update(self.schedules.digest())
        month = self._month or Month(0, 0)
        h.update(_Q.pack(month.year) + _Q.pack(month.month))
        h.update(_Q.pack(len(self._classes)))
        for pid in sorted(self._classes):
            billed = self._billed.get(pid, Month(0, 0))
            h.update(_s(pid) + _s(self._classes[pid]) + _Q.pack(billed.year) + _Q.pack(billed.month))
        for table in (self._volume, self._prev_volume):
            rows = sorted((pid, int(ac), v) for (pid, ac), v in table.items())
            h.update(_Q.pack(len(rows)))
            for pid, ac, v in rows:
                h.update(_s(pid) + _Q.pack(ac) + v.to_bytes(16, "little", signed=True))
        return h.digest()


def _volume_rows(table: Mapping[tuple[str, AssetClass], int]) -> list[list[Any]]:
    return [[pid, ac.name.lower(), v] for (pid, ac), v in sorted(table.items(), key=lambda kv: (kv[0][0], int(kv[0][1])))]
