"""Static pre-trade limits: price band, worst-case position, reduce-only (integer rules).

Price band: a limit price ``p`` passes iff ``|p - ref| * 10_000 <= ref * band_bps``; exactly
5.00 % away passes, one tick further does not. ``ref`` is the instrument's reference price:
``Instrument.reference_price`` until the first trade, then the last trade price (the reference
moves with trades). Market orders carry no price; they are valued at the band edge on their
side (``band_edges``) for the notional and margin checks.

Worst-case position: the position after this order *and every open order on the same side*
fills: buy -> ``pos + open_buy + qty``, sell -> ``pos - open_sell - qty``. A position limit
``L`` is checked on the side the order moves toward (buy: ``worst <= L``, sell:
``worst >= -L``), so a sell that reduces a long is never blocked by a limit that shrank below
it. An order *increases* exposure iff its worst case is on the far side of flat (buy:
``worst > 0``, sell: ``worst < 0``); reduce-only refuses exactly those, and only those go
through the margin check (the engine uses the same rules, inlined in its hot path).
"""

from __future__ import annotations

BPS = 10_000


def within_band(price: int, ref: int, band_bps: int) -> bool:
    diff = price - ref
    if diff < 0:
        diff = -diff
    return diff * BPS <= ref * band_bps


def band_edges(ref: int, band_bps: int) -> tuple[int, int]:
    """(lowest, highest) price inside the band (integer, inclusive)."""
    width = ref * band_bps // BPS
    return ref - width, ref + width


def worst_case(side_is_buy: bool, pos: int, open_buy: int, open_sell: int, qty: int) -> int:
    return pos + open_buy + qty if side_is_buy else pos - open_sell - qty


def within_position_limit(side_is_buy: bool, worst: int, limit: int) -> bool:
    return worst <= limit if side_is_buy else worst >= -limit


def reduce_only_ok(side_is_buy: bool, worst: int) -> bool:
    return worst <= 0 if side_is_buy else worst >= 0
