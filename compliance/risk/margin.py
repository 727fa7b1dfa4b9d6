"""Cross-margining in integers: one account per participant, SPAN-like scan risk per asset class,
inter-class spread credits, FX conversion to the base currency.

Money is in minor units of ``MarginConfig.base_currency``. For an instrument of currency C,
price scale ps and quantity scale qs, a raw amount (price x qty x multiplier) is worth
raw x rate(C) / 10**8 x 10**minor(base) / 10**(ps+qs) base minor units; ``InstrumentMargin``
holds that fraction reduced, and every conversion rounds in the conservative direction:
requirements up (ceil), profit and deltas toward the smaller magnitude (floor / truncate).

Per instrument (SPAN "combined commodity" = one instrument here):
    scan(x) = worst covered loss of a signed position x over the class's scenarios
            = x * mark * mult * max_s(-move_s * cover_s) for a long, the mirror for a short
    (the instruments are linear, so the worst row is known in advance: no per-row loop)
    delta(x) = x * mark * mult in base units (signed)
Per class c: scan_c = sum of its instruments' scan, delta_c = sum of deltas.
Credits: for each configured pair (a, b, rate) in order, if delta_a and delta_b have opposite
signs, m = min(remaining |delta_a|, remaining |delta_b|) is matched and each leg gets back
rate x scan x m / |delta| (SPAN's inter-commodity spread credit with a 1:1 delta ratio).
    maintenance = sum_c (scan_c - credit_c)
    initial     = sum_c ceil((scan_c - credit_c) * initial_bps_c / 10_000)
Maintenance uses positions; initial (the pre-trade test) uses each instrument's worst case of
(pos + open buys) and (pos - open sells), the side with the larger scan (ties: the long side).
Equity = collateral (converted) + realised and unrealised P&L of every instrument (converted),
so a profit in one class supports margin in another.
"""

from __future__ import annotations

from math import gcd

from compliance.risk.config import FX_SCALE, MarginConfig
from matching.instruments import CURRENCY_MINOR_UNITS, Instrument

N_CLASSES = 5  # arrays are indexed by AssetClass value (1..4); slot 0 unused


def _reduced(num: int, den: int) -> tuple[int, int]:
    g = gcd(num, den)
    return num // g, den // g


class InstrumentMargin:
    """Conversion constants of one instrument (immutable after construction)."""

    __slots__ = ("asset_class", "mult", "fx_num", "fx_den", "down_num", "up_num", "scan_den")

    def __init__(self, inst: Instrument, cfg: MarginConfig) -> None:
        rates = dict(cfg.fx_rates)
        self.asset_class = int(inst.asset_class)
        self.mult = inst.contract_multiplier
        self.fx_num, self.fx_den = _reduced(
            rates[inst.currency] * 10 ** CURRENCY_MINOR_UNITS[cfg.base_currency],
            FX_SCALE * 10 ** (inst.price_scale + inst.quantity_scale))
        cls = next(c for c in cfg.classes if int(c.asset_class) == self.asset_class)
        down, up = cls.worst_moves()  # bps x bps
        self.down_num = self.mult * down * self.fx_num
        self.up_num = self.mult * up * self.fx_num
        self.scan_den = 10**8 * self.fx_den

    def scan(self, x: int, mark: int) -> int:
        """Worst covered scenario loss of signed position x at ``mark`` (base minor units, ceil)."""
        if x > 0:
            return -((-x * mark * self.down_num) // self.scan_den)
        if x < 0:
            return -((x * mark * self.up_num) // self.scan_den)
        return 0

    def delta(self, x: int, mark: int) -> int:
        v = x * mark * self.mult * self.fx_num
        return v // self.fx_den if v >= 0 else -((-v) // self.fx_den)

    def to_base(self, raw: int) -> int:
        """A raw P&L amount (price x qty x multiplier) in base minor units, floored."""
        return raw * self.fx_num // self.fx_den

    def loss_to_base(self, raw: int) -> int:
        """A raw loss amount (>= 0) in base minor units, rounded up."""
        return -((-raw * self.fx_num) // self.fx_den)


def collateral_to_base(currency: str, amount: int, cfg: MarginConfig) -> int:
    rate = dict(cfg.fx_rates)[currency]
    num = amount * rate * 10 ** CURRENCY_MINOR_UNITS[cfg.base_currency]
    return num // (FX_SCALE * 10 ** CURRENCY_MINOR_UNITS[currency])


class MarginModel:
    """Class ratios and offset pairs; turns per-class scan/delta arrays into requirements."""

    __slots__ = ("classes", "initial_bps", "offsets", "_ratios", "_single")

    def __init__(self, cfg: MarginConfig) -> None:
        self.classes = tuple(sorted(int(c.asset_class) for c in cfg.classes))
        ratios = [0] * N_CLASSES
        for c in cfg.classes:
            ratios[int(c.asset_class)] = c.initial_bps
        self.initial_bps = tuple(ratios)
        self._ratios = tuple((c, ratios[c]) for c in self.classes)
        self.offsets = tuple((int(o.class_a), int(o.class_b), o.credit_bps) for o in cfg.offsets if o.credit_bps)
        # one offset pair (the default configuration): ``initial`` computes its credit inline
        self._single = self.offsets[0] if len(self.offsets) == 1 and self.offsets[0][0] != self.offsets[0][1] else None

    def credits(self, scan: list[int], delta: list[int]) -> list[int] | None:
        """Credit per class, or None when no pair is hedged (the common case)."""
        out: list[int] | None = None
        rem: list[int] | None = None
        for a, b, rate in self.offsets:
            da, db = delta[a], delta[b]
            if (da > 0 and db < 0) or (da < 0 and db > 0):
                if rem is None:
                    rem = [d if d >= 0 else -d for d in delta]
                    out = [0] * N_CLASSES
                m = rem[a] if rem[a] < rem[b] else rem[b]
                if m <= 0:
                    continue
                out[a] += scan[a] * m // (da if da > 0 else -da) * rate // 10_000
                out[b] += scan[b] * m // (db if db > 0 else -db) * rate // 10_000
                rem[a] -= m
                rem[b] -= m
        return out

    def maintenance(self, scan: list[int], delta: list[int]) -> int:
        credit = self.credits(scan, delta) if self.offsets else None
        total = 0
        if credit is None:
            for c in self.classes:
                total += scan[c]
        else:
            for c in self.classes:
                total += scan[c] - credit[c]
        return total

    def initial(self, scan: list[int], delta: list[int]) -> int:
        single = self._single
        if single is not None:  # the same arithmetic as credits() for one pair, without its lists (hot path)
            a, b, rate = single
            da, db = delta[a], delta[b]
            total = 0
            if (da > 0 and db < 0) or (da < 0 and db > 0):
                abs_a = da if da > 0 else -da
                abs_b = db if db > 0 else -db
                m = abs_a if abs_a < abs_b else abs_b
                credit_a = scan[a] * m // abs_a * rate // 10_000
                credit_b = scan[b] * m // abs_b * rate // 10_000
                for c, ratio in self._ratios:
                    if c == a:
                        total -= ((credit_a - scan[c]) * ratio) // 10_000
                    elif c == b:
                        total -= ((credit_b - scan[c]) * ratio) // 10_000
                    else:
                        total -= (-scan[c] * ratio) // 10_000
            else:
                for c, ratio in self._ratios:
                    total -= (-scan[c] * ratio) // 10_000
            return total
        return self.initial_general(scan, delta)

    def initial_general(self, scan: list[int], delta: list[int]) -> int:
        """``initial`` through ``credits`` for any number of pairs (the tests' oracle for the inline one)."""
        credit = self.credits(scan, delta) if self.offsets else None
        total = 0
        if credit is None:
            for c, ratio in self._ratios:
                total -= (-scan[c] * ratio) // 10_000
        else:
            for c, ratio in self._ratios:
                total -= ((credit[c] - scan[c]) * ratio) // 10_000
        return total

    def gross_initial_class(self, c: int, scan_c: int) -> int:
        """Initial requirement of one class without credits (an upper bound used as a fast path)."""
        return -((-scan_c * self.initial_bps[c]) // 10_000)
