"""Monthly fee statements per participant and the venue's revenue summary, built from fee records.

Input is a sequence of :class:`compliance.fees.FeeRecord` (one per side per fill) and
:class:`compliance.fees.FixedFeeCharge`: either straight from ``FeeEngine.on_trade`` (live) or
decoded from the ledger with ``FeeRecord.from_dict`` / ``FixedFeeCharge.from_dict``. Nothing
is recomputed: totals are integer sums of the fees that were reported on the execution reports,
so a statement always reconciles exactly with the fills (no rounding, no drift).

Sign convention (as in ``compliance.fees``): amounts are integers in minor units of their
currency; positive = the participant pays the venue, negative = the venue pays (rebates).
``rebates`` totals are therefore <= 0, and ``net = fixed_fees + fill_fees + rebates`` is what
the participant owes (statement) or what the venue keeps (revenue summary). ``discounts`` (base
tier fee minus fee actually charged) are informational: they are already reflected in
``fill_fees``/``rebates``. Amounts are kept per currency; contract volume is kept exactly in
10**-12 contract units (``VOLUME_PER_CONTRACT``).

API::

    st = participant_statement("inst-1", Month(2026, 2), fee_records, fixed_charges)
    st.render_text()   # operator/participant-readable table (``hub fees statement``)
    st.to_dict()       # JSON-able (Account service); st.to_json() canonical JSON
    monthly_statements(Month(2026, 2), fee_records, fixed_charges)   # every participant, one pass
    venue_revenue_summary(fee_records, fixed_charges, month=Month(2026, 2))   # operators
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compliance.fees import (
    VOLUME_PER_CONTRACT,
    FeeRecord,
    FixedFeeCharge,
    Liquidity,
    Month,
    format_minor,
)
from matching.instruments import CURRENCY_MINOR_UNITS
from matching.types import AssetClass

__all__ = [
    "CurrencyTotals",
    "InstrumentLine",
    "ParticipantStatement",
    "RevenueLine",
    "VenueRevenueSummary",
    "format_contracts",
    "monthly_statements",
    "participant_statement",
    "venue_revenue_summary",
]


def format_contracts(volume: int) -> str:
    """Contract volume in 10**-12 contract units as a decimal: 10_001 * 10**12 -> '10001'."""
    whole, frac = divmod(volume, VOLUME_PER_CONTRACT)
    return f"{whole}" if not frac else f"{whole}.{frac:012d}".rstrip("0")


def _format_notional(raw: int, scale: int, currency: str) -> str:
    """Exact notional, with at least the currency's minor-unit decimals and no trailing zeros beyond."""
    minor = CURRENCY_MINOR_UNITS[currency]
    whole, frac = divmod(abs(raw), 10**scale)
    sign = "-" if raw < 0 else ""
    if scale == 0:
        return f"{sign}{whole}" + ("." + "0" * minor if minor else "")
    digits = f"{frac:0{scale}d}".rstrip("0").ljust(minor, "0")
    return f"{sign}{whole}" + (f".{digits}" if digits else "")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return lines


# -- PARTICIPANT STATEMENT ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    """A participant's totals in one currency for the month."""

    currency: str
    fixed_fees: int = 0
    fill_fees: int = 0  # sum of positive per-fill fees
    rebates: int = 0  # sum of negative per-fill fees (<= 0)
    discounts: int = 0  # volume discounts given vs the base tier (already in fill_fees/rebates)
    fills: int = 0
    maker_fills: int = 0
    taker_fills: int = 0

    @property
    def net(self) -> int:
        return self.fixed_fees + self.fill_fees + self.rebates

    def to_dict(self) -> dict[str, int | str]:
        return {"currency": self.currency, "fixed_fees": self.fixed_fees, "fill_fees": self.fill_fees,
                "rebates": self.rebates, "discounts": self.discounts, "net": self.net, "fills": self.fills,
                "maker_fills": self.maker_fills, "taker_fills": self.taker_fills}


@dataclass(frozen=True, slots=True)
class InstrumentLine:
    """One instrument's fills on a statement (or in the venue summary)."""

    instrument_id: int
    symbol: str
    currency: str
    fills: int
    contracts: int  # 10**-12 contract units
    notional_raw: int  # worth 10**-notional_scale currency
    notional_scale: int
    fill_fees: int
    rebates: int
    discounts: int

    @property
    def net(self) -> int:
        return self.fill_fees + self.rebates

    def to_dict(self) -> dict[str, int | str]:
        return {"instrument_id": self.instrument_id, "symbol": self.symbol, "currency": self.currency,
                "fills": self.fills, "contracts": format_contracts(self.contracts),
                "notional": _format_notional(self.notional_raw, self.notional_scale, self.currency),
                "fill_fees": self.fill_fees, "rebates": self.rebates, "discounts": self.discounts, "net": self.net}


@dataclass(frozen=True, slots=True)
class ParticipantStatement:
    participant_id: str
    participant_class: str
    month: Month
    totals: tuple[CurrencyTotals, ...]  # one per currency, sorted by currency
    instruments: tuple[InstrumentLine, ...]  # sorted by instrument id
    contract_volume: tuple[tuple[AssetClass, int], ...]  # per asset class, 10**-12 contract units
    fixed_charges: tuple[FixedFeeCharge, ...]

    def total(self, currency: str = "USD") -> CurrencyTotals:
        for t in self.totals:
            if t.currency == currency:
                return t
        return CurrencyTotals(currency)

    @property
    def fills(self) -> int:
        return sum(t.fills for t in self.totals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id, "participant_class": self.participant_class,
            "month": self.month.label, "totals": [t.to_dict() for t in self.totals],
            "instruments": [line.to_dict() for line in self.instruments],
            "contract_volume": {ac.name.lower(): format_contracts(v) for ac, v in self.contract_volume},
            "fixed_charges": [c.to_dict() for c in self.fixed_charges],
        }

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def render_text(self) -> str:
        out = [f"Fee statement {self.month.label}  participant {self.participant_id} ({self.participant_class or '-'})",
               "amounts in currency units; positive = payable to the venue, negative = rebate", ""]
        rows = [[t.currency, format_minor(t.fixed_fees, t.currency), format_minor(t.fill_fees, t.currency),
                 format_minor(t.rebates, t.currency), format_minor(t.net, t.currency),
                 format_minor(t.discounts, t.currency), str(t.fills), str(t.maker_fills), str(t.taker_fills)]
                for t in self.totals]
        out += _table(["currency", "fixed fees", "fill fees", "rebates", "net", "discounts given", "fills", "maker",
                       "taker"], rows)
        if self.instruments:
            out.append("")
            out += _table(["instrument", "ccy", "fills", "contracts", "notional", "fill fees", "rebates", "discounts", "net"],
                          [[i.symbol, i.currency, str(i.fills), format_contracts(i.contracts),
                            _format_notional(i.notional_raw, i.notional_scale, i.currency),
                            format_minor(i.fill_fees, i.currency), format_minor(i.rebates, i.currency),
                            format_minor(i.discounts, i.currency), format_minor(i.net, i.currency)]
                           for i in self.instruments])
        if self.contract_volume:
            out.append("")
            out.append("contract volume: " + ", ".join(f"{ac.name.lower()} {format_contracts(v)}"
                                                       for ac, v in self.contract_volume))
        for c in self.fixed_charges:
            out.append(f"fixed fee {c.month.label}: {format_minor(c.amount, c.currency)} {c.currency} "
                       f"(schedule {c.schedule_version})")
        return "\n".join(out) + "\n"


def _merge_scaled(a: tuple[int, int], value: int, scale: int) -> tuple[int, int]:
    """Add ``value`` (worth 10**-scale) to ``a`` = (amount, scale), exactly."""
    amount, a_scale = a
    if scale > a_scale:
        return amount * 10 ** (scale - a_scale) + value, scale
    return amount + value * 10 ** (a_scale - scale), a_scale


# Per (participant, class, instrument, scales): fees, rebates, discounts, fills, maker fills, quantity, notional.
_Key = tuple[str, str, int, int, int]


def _accumulate(fills: Iterable[FeeRecord], lo: int, hi: int) -> tuple[dict[_Key, list[int]], dict[int, FeeRecord],
                                                                         dict[str, str]]:
    acc: dict[_Key, list[int]] = {}
    first: dict[int, FeeRecord] = {}  # instrument id -> a record of it (symbol, currency, asset class)
    classes: dict[str, str] = {}  # participant -> its class on its latest-keyed records
    maker = Liquidity.MAKER
    for r in fills:
        ts = r.hub_time_ns
        if ts < lo or ts >= hi:
            continue
        key = (r.participant_id, r.participant_class, r.instrument_id, r.quantity_scale, r.notional_scale)
        a = acc.get(key)
        if a is None:
            a = acc[key] = [0, 0, 0, 0, 0, 0, 0]
            first.setdefault(r.instrument_id, r)
            classes[r.participant_id] = r.participant_class
        fee = r.fee
        if fee >= 0:
            a[0] += fee
        else:
            a[1] += fee
        a[2] += r.base_fee - fee
        a[3] += 1
        if r.role is maker:
            a[4] += 1
        a[5] += r.quantity
        a[6] += r.notional_raw
    return acc, first, classes


def monthly_statements(month: Month, fills: Iterable[FeeRecord],
                       fixed: Iterable[FixedFeeCharge] = ()) -> dict[str, ParticipantStatement]:
    """Statements of every participant with a fill or a fixed charge in ``month`` (UTC), in one pass."""
    acc, first, classes = _accumulate(fills, month.start_ns, month.next().start_ns)
    # participant -> instrument -> [fees, rebates, discounts, fills, maker fills, contracts, (notional, scale)]
    lines: dict[str, dict[int, list[Any]]] = {}
    for (pid, _, iid, qscale, nscale), (fees, rebates, disc, n, makers, qty, notional) in acc.items():
        line = lines.setdefault(pid, {}).setdefault(iid, [0, 0, 0, 0, 0, 0, (0, 0)])
        for i, v in enumerate((fees, rebates, disc, n, makers, qty * 10 ** (12 - qscale))):
            line[i] += v
        line[6] = _merge_scaled(line[6], notional, nscale)
    fixed_by: dict[str, list[FixedFeeCharge]] = {}
    for c in fixed:
        if c.month == month:
            fixed_by.setdefault(c.participant_id, []).append(c)
            classes.setdefault(c.participant_id, c.participant_class)
    out: dict[str, ParticipantStatement] = {}
    for pid in sorted(set(lines) | set(fixed_by)):
        totals: dict[str, list[int]] = {}  # fixed, fees, rebates, discounts, fills, maker, taker
        volume: dict[AssetClass, int] = {}
        inst_lines = []
        for iid, (fees, rebates, disc, n, makers, contracts, (notional, nscale)) in sorted(lines.get(pid, {}).items()):
            r = first[iid]
            t = totals.setdefault(r.currency, [0] * 7)
            t[1] += fees
            t[2] += rebates
            t[3] += disc
            t[4] += n
            t[5] += makers
            t[6] += n - makers
            volume[r.asset_class] = volume.get(r.asset_class, 0) + contracts
            inst_lines.append(InstrumentLine(instrument_id=iid, symbol=r.symbol, currency=r.currency, fills=n,
                                             contracts=contracts, notional_raw=notional, notional_scale=nscale,
                                             fill_fees=fees, rebates=rebates, discounts=disc))
        charges = sorted(fixed_by.get(pid, ()), key=lambda c: (c.hub_time_ns, c.currency, c.schedule_version))
        for c in charges:
            totals.setdefault(c.currency, [0] * 7)[0] += c.amount
        out[pid] = ParticipantStatement(
            participant_id=pid, participant_class=classes.get(pid, ""), month=month,
            totals=tuple(CurrencyTotals(ccy, *t) for ccy, t in sorted(totals.items())),
            instruments=tuple(inst_lines), contract_volume=tuple(sorted(volume.items())), fixed_charges=tuple(charges))
    return out


def participant_statement(participant_id: str, month: Month, fills: Iterable[FeeRecord],
                          fixed: Iterable[FixedFeeCharge] = (), participant_class: str = "") -> ParticipantStatement:
    """One participant's statement for ``month``; an empty statement if it had no activity."""
    statements = monthly_statements(month, (r for r in fills if r.participant_id == participant_id),
                                    (c for c in fixed if c.participant_id == participant_id))
    st = statements.get(participant_id)
    if st is None:
        return ParticipantStatement(participant_id=participant_id, participant_class=participant_class, month=month,
                                    totals=(), instruments=(), contract_volume=(), fixed_charges=())
    return st


# -- VENUE REVENUE SUMMARY ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevenueLine:
    """Venue revenue for one key (a currency, a participant class or an instrument) in one currency."""

    key: str
    currency: str
    fill_fees: int  # collected from fills
    fixed_fees: int  # collected as monthly fixed fees
    rebates: int  # paid out (<= 0)
    discounts: int  # volume discounts given vs the base tier (informational)
    fills: int  # fill sides (a trade has two)

    @property
    def fees_collected(self) -> int:
        return self.fill_fees + self.fixed_fees

    @property
    def net(self) -> int:
        return self.fill_fees + self.fixed_fees + self.rebates

    def to_dict(self) -> dict[str, int | str]:
        return {"key": self.key, "currency": self.currency, "fill_fees": self.fill_fees,
                "fixed_fees": self.fixed_fees, "fees_collected": self.fees_collected, "rebates": self.rebates,
                "discounts": self.discounts, "net": self.net, "fills": self.fills}


@dataclass(frozen=True, slots=True)
class VenueRevenueSummary:
    period: str  # "YYYY-MM" or "all"
    totals: tuple[RevenueLine, ...]  # key = currency
    by_class: tuple[RevenueLine, ...]  # key = participant class
    by_instrument: tuple[RevenueLine, ...]  # key = symbol (sorted by instrument id)

    def total(self, currency: str = "USD") -> RevenueLine:
        for t in self.totals:
            if t.currency == currency:
                return t
        return RevenueLine(currency, currency, 0, 0, 0, 0, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "totals": [x.to_dict() for x in self.totals],
                "by_class": [x.to_dict() for x in self.by_class],
                "by_instrument": [x.to_dict() for x in self.by_instrument]}

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def render_text(self) -> str:
        out = [f"Venue fee revenue {self.period}",
               "amounts in currency units; rebates paid are negative; net = fees collected + rebates", ""]
        for title, lines in (("currency", self.totals), ("class", self.by_class), ("instrument", self.by_instrument)):
            out += _table([title, "ccy", "fill fees", "fixed fees", "collected", "rebates", "net", "discounts", "sides"],
                          [[x.key, x.currency, format_minor(x.fill_fees, x.currency),
                            format_minor(x.fixed_fees, x.currency), format_minor(x.fees_collected, x.currency),
                            format_minor(x.rebates, x.currency), format_minor(x.net, x.currency),
                            format_minor(x.discounts, x.currency), str(x.fills)] for x in lines])
            out.append("")
        return "\n".join(out)


def venue_revenue_summary(fills: Iterable[FeeRecord], fixed: Iterable[FixedFeeCharge] = (),
                          month: Month | None = None) -> VenueRevenueSummary:
    """Fees collected, rebates paid and net, per currency, participant class and instrument;
    over ``month`` (UTC) or, with ``month=None``, over every record given."""
    lo, hi = (month.start_ns, month.next().start_ns) if month else (-(2**63), 2**63)
    acc, first, _ = _accumulate(fills, lo, hi)
    views: dict[tuple[str, str, str], list[int]] = {}  # (view, key, currency) -> fill, fixed, rebates, disc, fills

    def add(view: str, key: str, currency: str, values: tuple[int, int, int, int, int]) -> None:
        b = views.setdefault((view, key, currency), [0, 0, 0, 0, 0])
        for i, v in enumerate(values):
            b[i] += v

    for (_, pclass, iid, _, _), (fees, rebates, disc, n, *_) in acc.items():
        r = first[iid]
        values = (fees, 0, rebates, disc, n)
        add("currency", r.currency, r.currency, values)
        add("class", pclass, r.currency, values)
        add("instrument", r.symbol, r.currency, values)
    for c in fixed:
        if month is None or c.month == month:
            add("currency", c.currency, c.currency, (0, c.amount, 0, 0, 0))
            add("class", c.participant_class, c.currency, (0, c.amount, 0, 0, 0))
    order = {r.symbol: iid for iid, r in first.items()}

    def lines(view: str, sort_key: Any) -> tuple[RevenueLine, ...]:
        keys = sorted((k for k in views if k[0] == view), key=sort_key)
        return tuple(RevenueLine(key, ccy, *views[(v, key, ccy)]) for v, key, ccy in keys)

    return VenueRevenueSummary(
        period=month.label if month else "all",
        totals=lines("currency", lambda k: k[2]),
        by_class=lines("class", lambda k: (k[1], k[2])),
        by_instrument=lines("instrument", lambda k: (order[k[1]], k[2])),
    )
