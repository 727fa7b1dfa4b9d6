"""Realised volatility per instrument and the position-limit factor it implies, in integers.

Estimator (RiskMetrics-style EWMA of squared log returns, zero mean, over irregular samples):

    S <- S * lambda + r**2        r = ln(p_k / p_{k-1}) in 10**-12 units (fixedpoint.ln_ratio)
    T <- T * lambda + dt          dt = t_k - t_{k-1} in ns
    variance per ns = S / T       (in 10**-24 units)

with lambda = 2**(-1/half_life) as an integer fraction of 10**18. Dividing the weighted squared
returns by the equally weighted elapsed time makes the estimate independent of how often the
instrument trades, so it compares directly with an annualised reference volatility.
A *sample* is the first trade at least ``sample_interval_ns`` after the previous sample (1 s by
default): sub-sampling keeps bid-ask bounce between consecutive prints from dominating the
estimate. The first trade only anchors the series. The reference volatility seeds the
estimator as a prior worth ``prior_weight_ns`` of observation, so a new instrument starts at
factor 1 and the prior fades as samples arrive.

Limit factor = clamp(reference vol / current vol, floor, cap) = isqrt(ref_var * T * 10**8 //
(S * ...)) in basis points, quantised down to ``step_bps`` and moved only when the raw factor
crosses a step by ``hysteresis_bps`` (a Schmitt trigger), so limit-change events are rare and
never flap. Everything is a function of the sequenced trades (prices and hub times).
"""

from __future__ import annotations

from math import isqrt

from compliance.risk.config import VolatilityConfig
from compliance.risk.fixedpoint import LAMBDA_SCALE, ln_ratio

YEAR_NS = 365 * 86_400 * 1_000_000_000  # annualisation: 365 days of calendar (hub) time
_NO_SAMPLE = -1


class VolatilityEstimator:
    __slots__ = ("lam", "interval", "ref_num", "ref_den", "floor", "cap", "step", "hyst",
                 "s", "t", "last_ts", "last_price", "factor_bps", "samples")

    def __init__(self, cfg: VolatilityConfig, reference_vol_bps: int, lam: int) -> None:
        self.lam = lam
        self.interval = cfg.sample_interval_ns
        # reference variance per ns in 10**-24 units, as the fraction ref_num / ref_den
        self.ref_num = reference_vol_bps * reference_vol_bps * 10**16
        self.ref_den = YEAR_NS
        self.floor, self.cap, self.step, self.hyst = cfg.floor_bps, cfg.cap_bps, cfg.step_bps, cfg.hysteresis_bps
        self.t = cfg.prior_weight_ns
        self.s = self.ref_num * self.t // self.ref_den
        self.last_ts = _NO_SAMPLE
        self.last_price = 0
        self.samples = 0
        self.factor_bps = self._quantise(self.raw_factor_bps())

    def retune(self, cfg: VolatilityConfig, reference_vol_bps: int, lam: int) -> None:
        """New parameters (a risk configuration change). An estimator with no sample yet starts
        again as a new one would (keeping its anchor trade); otherwise what it observed (S, T, the
        last sample) is kept, only
        the reference, the decay and the factor's quantisation change. The factor is re-derived
        without hysteresis: a new configuration applies at once."""
        if self.samples == 0:  # only the prior so far: seeded again from the new reference
            last_ts, last_price = self.last_ts, self.last_price
            self.__init__(cfg, reference_vol_bps, lam)  # type: ignore[misc]
            self.last_ts, self.last_price = last_ts, last_price  # the first trade still anchors the series
            return
        self.lam = lam
        self.interval = cfg.sample_interval_ns
        self.ref_num = reference_vol_bps * reference_vol_bps * 10**16
        self.floor, self.cap, self.step, self.hyst = cfg.floor_bps, cfg.cap_bps, cfg.step_bps, cfg.hysteresis_bps
        self.factor_bps = self._quantise(self.raw_factor_bps())

    def observe(self, ts: int, price: int) -> bool:
        """Feed one trade; True when it was taken as a sample (the estimate changed)."""
        if self.last_ts == _NO_SAMPLE:
            self.last_ts, self.last_price = ts, price
            return False
        dt = ts - self.last_ts
        if dt < self.interval:
            return False
        r = ln_ratio(price, self.last_price)
        lam = self.lam
        self.s = self.s * lam // LAMBDA_SCALE + r * r
        self.t = self.t * lam // LAMBDA_SCALE + dt
        self.last_ts, self.last_price = ts, price
        self.samples += 1
        return True

    def raw_factor_bps(self) -> int:
        """clamp(reference vol / current vol, floor, cap) in bps, before quantisation."""
        if self.s <= 0:
            return self.cap
        f = isqrt(self.ref_num * self.t * 10**8 // (self.ref_den * self.s))
        return self.floor if f < self.floor else self.cap if f > self.cap else f

    def vol_bps(self) -> int:
        """Current annualised volatility estimate in bps (for reports and events)."""
        return isqrt(self.s * YEAR_NS // (self.t * 10**16)) if self.t > 0 else 0

    def _quantise(self, raw: int) -> int:
        if raw >= self.cap:
            return self.cap
        q = raw - raw % self.step
        return self.floor if q < self.floor else q

    def update_factor(self) -> bool:
        """Re-derive the quantised factor; True if it changed (hysteresis applied)."""
        raw = self.raw_factor_bps()
        target = self._quantise(raw)
        cur = self.factor_bps
        if target == cur:
            return False
        if target < cur:
            if raw > cur - self.hyst:
                return False
        elif raw < min(target + self.hyst, self.cap):
            return False
        self.factor_bps = target
        return True

    def state(self) -> tuple[int, ...]:
        return (self.s, self.t, self.last_ts, self.last_price, self.factor_bps, self.samples)


def scaled_limit(base: int, factor_bps: int, lot: int) -> int:
    """base x factor, floored to a whole number of lots."""
    raw = base * factor_bps // 10_000
    return raw - raw % lot
