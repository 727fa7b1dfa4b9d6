"""The risk engine's mutable state and its canonical digest.

Primary state (what the digest covers): per instrument the reference/mark price, the volatility
estimator and limit factor, the LULD machine; per participant collateral by currency, the
daily-loss anchor, margin-call and reduce-only times, the participant kill mode and base-limit
overrides, and per instrument position, cash flow, open buy/sell quantity and rate bucket; every
open order; every session bucket; the kill board; the trading day; the config fingerprint.

Derived caches (P&L and scan/delta contributions per position, per-class sums, requirements,
holder sets) are *not* in the digest: they are a function of the primary state, and
``RiskEngine.verify()`` recomputes them from scratch to prove it.

Encoding: a tag per section, then every value as a length-prefixed big-endian two's-complement
integer or a length-prefixed UTF-8 string, maps in sorted key order. SHA-256 over the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from compliance.risk.margin import N_CLASSES, InstrumentMargin
from compliance.risk.volatility import VolatilityEstimator
from matching.instruments import Instrument

NEVER = 2**63 - 1  # "no such time" for reduce_only_from


class PositionState:
    """One participant in one instrument. ``cash`` is the raw cash flow (sells minus buys, in
    price x qty x multiplier units) so total P&L = cash + pos x mark x multiplier, exactly."""

    __slots__ = ("pos", "cash", "open_buy", "open_sell", "pnl", "scan_m", "delta_m", "scan_i", "delta_i")

    def __init__(self) -> None:
        self.pos = 0
        self.cash = 0
        self.open_buy = 0
        self.open_sell = 0
        self.pnl = 0  # cached: P&L in base minor units
        self.scan_m = 0  # cached: maintenance scan of the position
        self.delta_m = 0
        self.scan_i = 0  # cached: scan of the worst case including open orders
        self.delta_i = 0


class OrderState:
    __slots__ = ("participant", "instrument_id", "is_buy", "price", "remaining", "session", "persistent",
                 "digest_cache")

    def __init__(self, participant: str, instrument_id: int, is_buy: bool, price: int, remaining: int,
                 session: str, persistent: bool) -> None:
        self.participant = participant
        self.instrument_id = instrument_id
        self.is_buy = is_buy
        self.price = price
        self.remaining = remaining
        self.session = session
        self.persistent = persistent  # GTC: survives cancel-on-disconnect
        # (price, remaining, its digest bytes): only price and remaining ever change
        self.digest_cache: tuple[int, int, bytes] | None = None

    def digest_bytes(self, order_id: int) -> bytes:
        """What ``Digest`` would be fed for this order (see ``RiskEngine.state_digest``), encoded
        once and kept until its price or remaining quantity changes: a checkpoint digests every
        resting order, and encoding them all again each time costs milliseconds per thousand."""
        cache = self.digest_cache
        if cache is not None and cache[0] == self.price and cache[1] == self.remaining:
            return cache[2]
        raw = (encoded_ints((order_id, self.instrument_id, int(self.is_buy), self.price, self.remaining,
                             int(self.persistent)))
               + encoded_text(self.participant) + encoded_text(self.session))
        self.digest_cache = (self.price, self.remaining, raw)
        return raw


class ParticipantState:
    __slots__ = ("pid", "collateral", "collateral_base", "pnl", "day_anchor", "positions", "buckets", "orders",
                 "scan_m", "delta_m", "scan_i", "delta_i", "gross_cls", "gross", "scan_m_total", "maint", "initial",
                 "maint_dirty", "initial_dirty",
                 "margin_call", "reduce_only_from", "reduce_only_announced", "kill_mode", "limit_bases")

    def __init__(self, pid: str, collateral: dict[str, int], collateral_base: int) -> None:
        self.pid = pid
        self.collateral = collateral
        self.collateral_base = collateral_base
        self.pnl = 0
        self.day_anchor = collateral_base
        self.positions: dict[int, PositionState] = {}
        self.buckets: dict[int, list[int]] = {}
        self.orders: dict[int, None] = {}  # open order ids (insertion-ordered set)
        self.scan_m = [0] * N_CLASSES
        self.delta_m = [0] * N_CLASSES
        self.scan_i = [0] * N_CLASSES
        self.delta_i = [0] * N_CLASSES
        self.gross_cls = [0] * N_CLASSES
        self.gross = 0  # initial requirement without credits (upper bound), kept current
        self.scan_m_total = 0  # maintenance without credits (upper bound), kept current
        self.maint = 0  # exact requirements: recomputed on demand when marked dirty
        self.initial = 0
        self.maint_dirty = False
        self.initial_dirty = False
        self.margin_call = -1  # ts of the open margin call, -1 for none
        self.reduce_only_from = NEVER  # margin-call grace end
        self.reduce_only_announced = False
        self.kill_mode = 0  # participant-scope KillMode
        self.limit_bases: dict[int, int] = {}  # base position limit overrides by instrument

    @property
    def equity(self) -> int:
        return self.collateral_base + self.pnl


class InstrumentState:
    __slots__ = ("iid", "inst", "ac", "lot", "band_bps", "ref", "max_qty", "max_notional_raw", "mult", "margin",
                 "vol", "base_limit", "limit", "luld", "holders")

    def __init__(self, inst: Instrument, band_bps: int, max_qty: int, max_notional_raw: int, base_limit: int,
                 margin: InstrumentMargin, vol: VolatilityEstimator, luld) -> None:
        self.iid = inst.instrument_id
        self.inst = inst
        self.ac = int(inst.asset_class)
        self.lot = inst.lot_size
        self.band_bps = band_bps
        self.ref = inst.reference_price  # band reference and mark: last trade price after the first trade
        self.max_qty = max_qty
        self.max_notional_raw = max_notional_raw
        self.mult = inst.contract_multiplier
        self.margin = margin
        self.vol = vol
        self.base_limit = base_limit
        self.limit = 0  # base_limit x factor (set by the engine)
        self.luld = luld
        self.holders: dict[str, None] = {}  # participants with a position or open orders here


def encoded_int(x: int) -> bytes:
    """``Digest.int``'s encoding: 2-byte length, then minimal big-endian two's complement."""
    raw = x.to_bytes((x.bit_length() + 8) // 8 or 1, "big", signed=True)
    return len(raw).to_bytes(2, "big") + raw


def encoded_ints(xs: tuple[int, ...]) -> bytes:
    """``Digest.ints``'s encoding: the count, then each."""
    return encoded_int(len(xs)) + b"".join([encoded_int(x) for x in xs])


def encoded_text(s: str) -> bytes:
    """``Digest.text``'s encoding."""
    raw = s.encode()
    return b"s" + len(raw).to_bytes(4, "big") + raw


class Digest:
    """Canonical encoder feeding SHA-256."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def tag(self, name: str) -> None:
        self.text("#" + name)

    def int(self, x: int) -> None:
        raw = int(x).to_bytes((int(x).bit_length() + 8) // 8 or 1, "big", signed=True)
        self._h.update(len(raw).to_bytes(2, "big") + raw)

    def ints(self, xs: Iterable[int]) -> None:
        xs = tuple(xs)
        self.int(len(xs))
        for x in xs:
            self.int(x)

    def text(self, s: str) -> None:
        raw = s.encode()
        self._h.update(b"s" + len(raw).to_bytes(4, "big") + raw)

    def encoded(self, b: bytes) -> None:
        """Feed bytes already in this encoding (``encoded_int`` and friends): the digest is the same
        as feeding their values one by one."""
        self._h.update(b)

    def raw(self, b: bytes) -> None:
        self._h.update(b"b" + len(b).to_bytes(4, "big") + b)

    def digest(self) -> bytes:
        return self._h.digest()
