"""Integer-only arithmetic for risk decisions: logarithms, EWMA weights, rounding, FX.

Nothing that affects a decision is a float. Two places would naturally use transcendental
functions, and both are done in exact integer arithmetic instead of ``math.log`` / ``2 ** x``:

* ``ln_ratio(a, b)`` = ln(a / b) in units of 10**-12, by range reduction to [1, 2) with a
  power of two and the series ln(x) = 2 atanh((x - 1) / (x + 1)) evaluated in 10**-40 fixed
  point (z <= 1/3, so each term gains a factor 9). ln 2 itself comes from the same series.
  ``math.log`` would be deterministic on one platform, but libm implementations differ in the
  last ulp (glibc, musl, macOS), and a replay on another machine must produce the same digest.
  The integer result is identical everywhere; it is within 1e-12 of the true value and exactly
  antisymmetric (ln(b/a) == -ln(a/b)).
* ``ewma_lambda(h)`` = floor(10**18 * 2**(-1/h)), the per-observation decay for a half-life of
  ``h`` observations: the largest L with L**h * 2 <= (10**18)**h, found by bisection.
"""

from __future__ import annotations

LOG_SCALE = 10**12  # ln_ratio result unit
LAMBDA_SCALE = 10**18  # ewma_lambda unit
_WORK = 10**40  # internal precision of the series
_WORK_PER_LOG = _WORK // LOG_SCALE


def _atanh_series(num: int, den: int) -> int:
    """2 * atanh(num / den) in _WORK units, for 0 <= num/den <= 1/3."""
    z = num * _WORK // den
    z2 = z * z // _WORK
    term, n, total = z, 1, 0
    while term:
        total += term // n
        term = term * z2 // _WORK
        n += 2
    return 2 * total


_LN2_WORK = _atanh_series(1, 3)  # ln 2 = 2 atanh(1/3)


def ln_ratio(a: int, b: int) -> int:
    """ln(a / b) for positive integers, in units of 10**-12 (truncated toward zero)."""
    if a <= 0 or b <= 0:
        raise ValueError("ln_ratio needs positive integers")
    if a == b:
        return 0
    negative = a < b
    if negative:
        a, b = b, a
    k = (a // b).bit_length() - 1  # a / (b * 2**k) in [1, 2)
    b <<= k
    value = _atanh_series(a - b, a + b) + k * _LN2_WORK
    out = value // _WORK_PER_LOG
    return -out if negative else out


def ewma_lambda(half_life: int) -> int:
    """floor(10**18 * 2**(-1/half_life)): weight of the previous EWMA state per observation."""
    if half_life < 1:
        raise ValueError("half_life must be at least 1")
    target = LAMBDA_SCALE**half_life
    lo, hi = 0, LAMBDA_SCALE  # invariant: lo**h * 2 <= target < (hi + 1)**h * 2 unless hi = scale
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid**half_life * 2 <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for b > 0 (exact for negative a too)."""
    return -((-a) // b)


def trunc_div(a: int, b: int) -> int:
    """a / b rounded toward zero for b > 0 (symmetric for long and short)."""
    return a // b if a >= 0 else -((-a) // b)
