"""RiskEngine: the facade the hub calls in its sequenced path (see the package docstring for
the call order). Pure integer state driven only by the arguments of its calls: no clock, no
randomness, no floats in anything that decides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from compliance.risk import ratelimit
from compliance.risk.breakers import KillBoard, LatencyMonitor, Luld, Phase
from compliance.risk.config import RiskConfig, RiskConfigError
from compliance.risk.events import (
    CancelCause,
    CancelOrders,
    CollateralChanged,
    DailyLossBreached,
    KillMode,
    KillReason,
    KillSwitchActivated,
    KillSwitchLifted,
    MarginCall,
    MarginCallResolved,
    PositionLimitChanged,
    ReduceOnlyEnded,
    ReduceOnlyStarted,
    RiskEvent,
    RiskReject,
    Scope,
    TradingDayStarted,
)
from compliance.risk.fixedpoint import ewma_lambda
from compliance.risk.margin import N_CLASSES, InstrumentMargin, MarginModel, collateral_to_base
from compliance.risk.ratelimit import TOKEN
from compliance.risk.state import (
    NEVER,
    Digest,
    InstrumentState,
    OrderState,
    ParticipantState,
    PositionState,
)
from compliance.risk.volatility import VolatilityEstimator, scaled_limit
from matching.instruments import Instrument
from matching.types import AssetClass, OrderType, Side, TimeInForce

DAY_NS = 86_400 * 1_000_000_000
_BLOCK = int(KillMode.BLOCK)
_REDUCE_ONLY = int(KillMode.REDUCE_ONLY)
_MARKET = int(OrderType.MARKET)
_BUY = int(Side.BUY)

# bound once: IntEnum member lookups are attribute loads on the class
_R_UNKNOWN = RiskReject.UNKNOWN_INSTRUMENT
_R_KILL = RiskReject.KILL_SWITCH
_R_PAUSED = RiskReject.INSTRUMENT_PAUSED
_R_SESSION = RiskReject.SESSION_RATE
_R_RATE = RiskReject.ORDER_RATE
_R_BAND = RiskReject.PRICE_BAND
_R_QTY = RiskReject.MAX_ORDER_QUANTITY
_R_NOTIONAL = RiskReject.MAX_ORDER_NOTIONAL
_R_REDUCE = RiskReject.REDUCE_ONLY
_R_POSITION = RiskReject.POSITION_LIMIT
_R_MARGIN = RiskReject.MARGIN

_CANCEL_CAUSE = {KillReason.OPERATOR: CancelCause.KILL_SWITCH, KillReason.DAILY_LOSS: CancelCause.DAILY_LOSS,
                 KillReason.LATENCY: CancelCause.LATENCY}


@dataclass(frozen=True, slots=True)
class MarginSnapshot:
    """A participant's account, base-currency minor units (for the account service)."""

    participant_id: str
    collateral: int
    pnl: int  # realised + unrealised, all instruments
    equity: int
    maintenance: int  # positions only
    initial: int  # worst case including open orders
    day_start_equity: int
    margin_call_since: int  # -1: none
    reduce_only_from: int  # NEVER: not scheduled
    kill_mode: KillMode


@dataclass(frozen=True, slots=True)
class InstrumentLimitView:
    instrument_id: int
    position_limit: int  # after volatility scaling
    limit_factor_bps: int  # 10_000 = the base limit
    net_position: int
    open_buy: int
    open_sell: int


@dataclass(frozen=True, slots=True)
class ParticipantRiskView:
    """Everything a participant may see of its own risk state at hub time ``ts`` (for an
    account query such as Account.GetRisk). Money in base-currency minor units."""

    participant_id: str
    base_currency: str
    equity: int
    initial_requirement: int
    maintenance_requirement: int
    margin_call: bool
    reduce_only: bool  # effective now, from any scope or the margin-call grace
    kill_switch: bool  # a blocking switch covers the participant or the whole hub
    limits: tuple[InstrumentLimitView, ...]
    detail: dict  # JSON-ready: collateral, P&L, daily loss, times, switches by scope


class RiskEngine:
    """Pre-trade checks, position/margin/volatility state, breakers and kill switches.

    Thread-safety: none; call it only from the hub's sequencer (one writer)."""

    def __init__(self, config: RiskConfig, instruments: tuple[Instrument, ...]) -> None:
        config.validated(instruments)
        self._instruments = tuple(sorted(instruments, key=lambda i: i.instrument_id))
        self._inst: dict[int, InstrumentState] = {}
        for inst in self._instruments:
            self._inst[inst.instrument_id] = InstrumentState(inst, 0, 0, 0, 0, None, None,  # type: ignore[arg-type]
                                                             Luld(inst.instrument_id, 0, 0))
        self._apply_parameters(config)
        for ins in self._inst.values():
            ins.limit = scaled_limit(ins.base_limit, ins.vol.factor_bps, ins.lot)

        self._participants: dict[str, ParticipantState] = {}
        self._orders: dict[int, OrderState] = {}
        self._sessions: dict[str, list[int]] = {}
        self._kills = KillBoard()
        self._hub_mode = 0
        self._class_mode = [0] * N_CLASSES
        self._luld_block: dict[int, tuple[int, int]] = {}  # instruments with a scheduled/running pause
        self._margin_called: dict[str, None] = {}
        self._day: int | None = None
        self._blank = self._new_participant("")  # read-only stand-in for participants never seen
        for pid in sorted(self._pconf):
            self._participants[pid] = self._new_participant(pid)

    def _apply_parameters(self, config: RiskConfig) -> None:
        """Everything the configuration sets (the state it acts on is left alone)."""
        self.config = config
        self._fingerprint = config.fingerprint()
        r = config.rates
        self._order_rate, self._order_cap = r.orders_per_second, r.order_burst * TOKEN
        self._sess_rate, self._sess_cap = r.session_messages_per_second, r.session_burst * TOKEN
        self._model = MarginModel(config.margin)
        b = config.breakers
        self._max_loss_bps = b.max_daily_loss_bps
        self._day_offset = b.trading_day_offset_ns
        self._grace = config.margin.margin_call_grace_ns
        self._latency = LatencyMonitor(b.latency_threshold_ns, b.latency_consecutive)
        self._pconf = {p.participant_id: p for p in config.participants}

        overrides = {o.instrument_id: o for o in config.instruments}
        ref_vols = dict(config.volatility.reference_vol_bps)
        lam = ewma_lambda(config.volatility.half_life_samples)
        for inst in self._instruments:
            st = self._inst[inst.instrument_id]
            o = overrides.get(inst.instrument_id)
            st.band_bps = o.price_band_bps if o and o.price_band_bps else inst.price_band_bps
            st.max_qty = o.max_order_quantity if o and o.max_order_quantity else inst.max_quantity
            st.max_notional_raw = inst.max_notional_raw
            if o and o.max_order_notional:
                st.max_notional_raw = o.max_order_notional * (inst.max_notional_raw // inst.max_notional)
            st.base_limit = (o.base_position_limit if o and o.base_position_limit
                             else inst.max_quantity * config.position_limit_multiple)
            st.margin = InstrumentMargin(inst, config.margin)
            ref_vol = o.reference_vol_bps if o and o.reference_vol_bps else ref_vols[inst.asset_class]
            if st.vol is None:
                st.vol = VolatilityEstimator(config.volatility, ref_vol, lam)
            else:
                st.vol.retune(config.volatility, ref_vol, lam)
            st.luld.limit_ns, st.luld.pause_ns = b.luld_limit_state_ns, b.luld_pause_ns

    def _collateral_after(self, config: RiskConfig) -> dict[str, dict[str, int]]:
        """Each existing participant's collateral under ``config`` (see ``reconfigure``): a
        configured amount that changed moves the balance by the difference; a zero balance in a
        currency the new configuration does not configure for it is dropped."""
        old_pconf, old_default = self._pconf, self.config.margin.default_collateral
        new_pconf = {p.participant_id: p for p in config.participants}
        out = {}
        for pid, p in self._participants.items():
            was, now = old_pconf.get(pid), new_pconf.get(pid)
            before = dict(was.collateral if was is not None and was.collateral is not None else old_default)
            after = dict(now.collateral if now is not None and now.collateral is not None
                         else config.margin.default_collateral)
            balances = dict(p.collateral)
            for ccy in sorted(set(before) | set(after)):
                if after.get(ccy, 0) != before.get(ccy, 0):
                    balances[ccy] = balances.get(ccy, 0) + after.get(ccy, 0) - before.get(ccy, 0)
            out[pid] = {c: a for c, a in balances.items() if a != 0 or c in after}
        return out

    def check_reconfigure(self, config: RiskConfig) -> None:
        """Raise RiskConfigError if ``reconfigure(config)`` could not apply to this state: call it
        before journaling a new configuration, so that one is never on record unapplicable."""
        config.validated(self._instruments)
        rates = dict(config.margin.fx_rates)
        for pid, balances in sorted(self._collateral_after(config).items()):
            missing = sorted(c for c in balances if c not in rates)
            if missing:
                raise RiskConfigError(f"participant {pid!r} holds collateral in {', '.join(missing)}, which "
                                      f"margin.fx_rates no longer prices")

    def reconfigure(self, ts: int, config: RiskConfig) -> list[RiskEvent]:
        """Take a new configuration mid-stream, keeping the state. The hub calls it at a CONFIG
        record, live and on replay, so both sides do exactly the same (``check_reconfigure`` first).

        Positions, orders, volatility samples, LULD phases, kill switches, margin calls and the
        trading day carry over. Rate buckets are capped at the new bursts. A participant's
        configured collateral that changed moves its balance like a deposit or withdrawal of the
        difference (the daily-loss anchor moves with it: not profit or loss); a participant the
        configuration names for the first time starts with what it configures. Its configured base
        limits replace the previous configuration's (a limit an operator set since, on an
        instrument neither configuration names, stays). Margins and limits are then recomputed and
        every participant re-evaluated: the events are margin calls (and their resolution) the new
        requirements cause."""
        self.check_reconfigure(config)
        events: list[RiskEvent] = []
        self._roll_day(ts, events)
        old_pconf = self._pconf
        collateral = self._collateral_after(config)
        self._apply_parameters(config)
        self._blank = self._new_participant("")  # the stand-in for participants never seen
        for ins in self._inst.values():
            ins.limit = scaled_limit(ins.base_limit, ins.vol.factor_bps, ins.lot)
        for p in self._participants.values():
            for bucket in p.buckets.values():
                bucket[0] = min(bucket[0], self._order_cap)
        for bucket in self._sessions.values():
            bucket[0] = min(bucket[0], self._sess_cap)
        for pid in sorted(self._participants):
            p = self._participants[pid]
            was, now = old_pconf.get(pid), self._pconf.get(pid)
            p.collateral = collateral[pid]
            for iid, _ in (was.position_limits if was is not None else ()):
                p.limit_bases.pop(iid, None)
            p.limit_bases.update(now.position_limits if now is not None else ())
            base = sum(collateral_to_base(c, a, config.margin) for c, a in sorted(p.collateral.items()))
            p.day_anchor += base - p.collateral_base
            p.collateral_base = base
            for iid, ps in p.positions.items():  # the cached contributions move by their differences
                self._remark(p, self._inst[iid], ps)
            p.gross_cls = [self._model.gross_initial_class(ac, p.scan_i[ac]) for ac in range(N_CLASSES)]
            p.gross = sum(p.gross_cls)
            p.maint_dirty = p.initial_dirty = True
            self._evaluate(ts, p, events)
        for pid in sorted(set(self._pconf) - set(self._participants)):  # as a fresh engine has them
            self._participants[pid] = self._new_participant(pid)
        return events

    # -- PARTICIPANTS --------------------------------------------------------------------------

    def _new_participant(self, pid: str) -> ParticipantState:
        pc = self._pconf.get(pid)
        raw = pc.collateral if pc is not None and pc.collateral is not None else self.config.margin.default_collateral
        collateral = {c: a for c, a in raw}
        base = sum(collateral_to_base(c, a, self.config.margin) for c, a in sorted(collateral.items()))
        p = ParticipantState(pid, collateral, base)
        if pc is not None:
            p.limit_bases = dict(pc.position_limits)
        return p

    def _participant(self, pid: str) -> ParticipantState:
        p = self._participants.get(pid)
        if p is None:
            p = self._participants[pid] = self._new_participant(pid)
        return p

    def _position(self, p: ParticipantState, ins: InstrumentState) -> PositionState:
        ps = p.positions.get(ins.iid)
        if ps is None:
            ps = p.positions[ins.iid] = PositionState()
        ins.holders[p.pid] = None
        return ps

    # -- PRE-TRADE (hot path, pure) ------------------------------------------------------------

    def check_order(self, ts: int, participant: str, session: str, instrument_id: int, side: int,
                    order_type: int, price: int, quantity: int, *, throttled: bool = True) -> RiskReject | None:
        """Decide a new order; None = accept. Pure: changes nothing (call ``on_order_entered``
        once the order is sequenced). Checks in this order: kill switch (BLOCK), LULD pause,
        session rate, order rate, price band, max quantity, max notional, reduce-only, position
        limit, margin. Market orders (price ignored) are valued at the band edge of their side.
        An order whose worst case does not leave the flat side it starts from (it can only
        reduce the position) skips the margin check. ``session`` "" (a unary call) uses a
        per-participant session bucket. ``throttled=False`` (mass-quote orders: post-only, limited
        per message instead) skips the two rate checks; pass the same to ``on_order_entered``."""
        return self._check(ts, participant, session, instrument_id, side, order_type, price, quantity, 0, throttled)

    def blocks(self, participant: str, instrument_id: int) -> bool:
        """Whether a BLOCK kill switch covers this participant's new orders on this instrument:
        ``check_order``'s first check on its own. Safe without the sequencer (a few reads of values
        the sequencer replaces whole), so the gateway can refuse at arrival instead of waiting
        behind the kill's cancel steps for a decision that cannot differ."""
        ins = self._inst.get(instrument_id)
        if ins is None:
            return False
        p = self._participants.get(participant)
        return max(self._hub_mode, self._class_mode[ins.ac], p.kill_mode if p is not None else 0) == _BLOCK

    def check_replace(self, ts: int, participant: str, session: str, order_id: int, price: int,
                      quantity: int) -> RiskReject | None:
        """Decide a replace (new price and new open quantity) as if the order were new, with its
        current remaining quantity taken out of the open exposure. None for unknown orders (the
        engine answers UNKNOWN_ORDER). Pure."""
        o = self._orders.get(order_id)
        if o is None or o.participant != participant:
            return None
        return self._check(ts, participant, session, o.instrument_id, _BUY if o.is_buy else 2, 1, price, quantity,
                           o.remaining)

    def _check(self, ts: int, participant: str, session: str, iid: int, side: int, order_type: int,
               price: int, qty: int, released: int = 0, throttled: bool = True) -> RiskReject | None:
        ins = self._inst.get(iid)
        if ins is None:
            return _R_UNKNOWN
        p = self._participants.get(participant) or self._blank
        ac = ins.ac
        mode = self._hub_mode
        m = self._class_mode[ac]
        if m > mode:
            mode = m
        m = p.kill_mode
        if m > mode:
            mode = m
        if mode == _BLOCK:
            return _R_KILL
        if self._luld_block:
            w = self._luld_block.get(iid)
            if w is not None and w[0] <= ts < w[1]:
                return _R_PAUSED
        if throttled:
            b = self._sessions.get(session or participant)
            if b is not None and ts > b[1]:
                if b[0] + (ts - b[1]) * self._sess_rate < TOKEN:
                    return _R_SESSION
            elif b is not None and b[0] < TOKEN:
                return _R_SESSION
            b = p.buckets.get(iid)
            if b is not None and ts > b[1]:
                if b[0] + (ts - b[1]) * self._order_rate < TOKEN:
                    return _R_RATE
            elif b is not None and b[0] < TOKEN:
                return _R_RATE

        ref = ins.ref
        buy = side == _BUY
        if order_type == _MARKET:
            width = ref * ins.band_bps // 10_000
            price = ref + width if buy else ref - width
        else:
            diff = price - ref
            if (diff if diff >= 0 else -diff) * 10_000 > ref * ins.band_bps:
                return _R_BAND
        if qty > ins.max_qty:
            return _R_QTY
        mult = ins.mult
        if price * qty * mult > ins.max_notional_raw:
            return _R_NOTIONAL

        ps = p.positions.get(iid)
        if ps is None:
            pos = ob = osl = old_scan = old_delta = 0
        else:
            pos, ob, osl, old_scan, old_delta = ps.pos, ps.open_buy, ps.open_sell, ps.scan_i, ps.delta_i
        if buy:
            ob -= released
            long_x = pos + ob + qty
            short_x = pos - osl
            worst = long_x
        else:
            osl -= released
            long_x = pos + ob
            short_x = pos - osl - qty
            worst = short_x
        increases = worst > 0 if buy else worst < 0  # False: the order can only reduce the position
        if increases and (mode == _REDUCE_ONLY or ts >= p.reduce_only_from):
            return _R_REDUCE
        lb = p.limit_bases
        limit = ins.limit if not lb or iid not in lb else scaled_limit(lb[iid], ins.vol.factor_bps, ins.lot)
        # Only the side the order moves toward, and never a replace that does not add open quantity
        # (cutting an order is allowed however far the limit has dropped below the position).
        if ((worst > limit) if buy else (worst < -limit)) and qty > released:
            return _R_POSITION
        if not increases:
            return None  # reducing orders are never refused for margin

        # margin: post-trade initial requirement (worst case with all open orders) vs equity
        mg = ins.margin
        # mg.scan(long_x, ref) and mg.scan(short_x, ref), inlined (hot path; the tests compare them)
        den = mg.scan_den
        if long_x > 0:
            sl = -((-long_x * ref * mg.down_num) // den)
        elif long_x < 0:
            sl = -((long_x * ref * mg.up_num) // den)
        else:
            sl = 0
        if short_x > 0:
            ss = -((-short_x * ref * mg.down_num) // den)
        elif short_x < 0:
            ss = -((short_x * ref * mg.up_num) // den)
        else:
            ss = 0
        if sl >= ss:
            new_scan, chosen = sl, long_x
        else:
            new_scan, chosen = ss, short_x
        if buy:
            exec_loss = mg.loss_to_base((price - ref) * qty * mult) if price > ref else 0
        else:
            exec_loss = mg.loss_to_base((ref - price) * qty * mult) if price < ref else 0
        equity = p.collateral_base + p.pnl
        cls_scan = p.scan_i[ac] - old_scan + new_scan
        gross = p.gross - p.gross_cls[ac] - ((-cls_scan * self._model.initial_bps[ac]) // 10_000)
        if gross + exec_loss <= equity:
            return None  # even without any offset credit the account covers it
        scan = p.scan_i.copy()
        delta = p.delta_i.copy()
        scan[ac] = cls_scan
        v = chosen * ref * mult * mg.fx_num  # mg.delta(chosen, ref), inlined
        delta[ac] += (v // mg.fx_den if v >= 0 else -((-v) // mg.fx_den)) - old_delta
        required = self._model.initial(scan, delta) + exec_loss
        if required > equity and required > (self._initial(p) if p.initial_dirty else p.initial):
            return _R_MARGIN
        return None

    #: ``check_order`` without its wrapper call, every argument positional: (ts, participant, session,
    #: instrument_id, side, order_type, price, quantity, released=0, throttled=True). The hub's hot path.
    check_order_positional = _check

    # -- SEQUENCED ORDER FLOW ------------------------------------------------------------------

    def on_order_entered(self, ts: int, participant: str, session: str, order_id: int, instrument_id: int,
                         side: int, price: int, quantity: int, time_in_force: int = TimeInForce.DAY, *,
                         throttled: bool = True) -> None:
        """The hub sequenced this new order (it passed ``check_order``): consume the session and
        order-rate tokens and add its quantity to the open exposure until trades, ``on_order_done``
        or ``on_order_replaced`` change it. Call it for every NewOrder command in the ledger,
        before feeding that command's engine events, live and on replay."""
        ins = self._inst.get(instrument_id)
        if ins is None:
            return
        if throttled:
            self._take_tokens(ts, participant, session, instrument_id)
        p = self._participant(participant)
        is_buy = side == _BUY
        self._orders[order_id] = OrderState(participant, instrument_id, is_buy, price, quantity, session,
                                            time_in_force == TimeInForce.GTC)
        p.orders[order_id] = None
        ps = self._position(p, ins)
        if is_buy:
            ps.open_buy += quantity
        else:
            ps.open_sell += quantity
        self._refresh_initial(p, ins, ps)

    def on_quotes_entered(self, ts: int, participant: str, session: str,
                          quotes: Iterable[tuple[int, int, int, int, int]]) -> None:
        """``on_order_entered(..., time_in_force=GTC, throttled=False)`` for each (order_id, instrument_id,
        side, price, quantity) of one mass quote, in order, with the margin caches refreshed once per
        position touched instead of once per quote: the same final state as the one-by-one calls (the
        refresh depends only on the position), which is what replay makes of the same commands."""
        inst, orders = self._inst, self._orders
        p: ParticipantState | None = None
        touched: dict[int, PositionState] = {}
        for order_id, iid, side, price, quantity in quotes:
            if iid not in inst:
                continue
            if p is None:
                p = self._participant(participant)
            is_buy = side == _BUY
            orders[order_id] = OrderState(participant, iid, is_buy, price, quantity, session, True)
            p.orders[order_id] = None
            ps = touched.get(iid)
            if ps is None:
                ps = touched[iid] = self._position(p, inst[iid])
            if is_buy:
                ps.open_buy += quantity
            else:
                ps.open_sell += quantity
        for iid, ps in touched.items():
            self._refresh_initial(p, inst[iid], ps)

    def on_replace_entered(self, ts: int, participant: str, session: str, order_id: int) -> None:
        """The hub sequenced a replace that passed ``check_replace``: it costs one session and one
        order-rate token (the exposure changes at ``on_order_replaced``)."""
        o = self._orders.get(order_id)
        if o is not None:
            self._take_tokens(ts, participant, session, o.instrument_id)

    def _take_tokens(self, ts: int, participant: str, session: str, instrument_id: int) -> None:
        key = session or participant  # no session (unary calls): the participant's own bucket
        self._sessions[key] = ratelimit.take(self._sessions.get(key), ts, self._sess_rate, self._sess_cap)
        p = self._participant(participant)
        p.buckets[instrument_id] = ratelimit.take(p.buckets.get(instrument_id), ts, self._order_rate, self._order_cap)

    def on_order_done(self, ts: int, order_id: int) -> None:
        """The order left the book or never entered it (engine Done, Cancelled, Expired, or a
        Rejected new order): release its remaining open quantity."""
        o = self._orders.pop(order_id, None)
        if o is None:
            return
        p = self._participants[o.participant]
        p.orders.pop(order_id, None)
        ins = self._inst[o.instrument_id]
        ps = p.positions[o.instrument_id]
        if o.is_buy:
            ps.open_buy -= o.remaining
        else:
            ps.open_sell -= o.remaining
        self._refresh_initial(p, ins, ps)
        self._maybe_release_holder(p, ins, ps)

    def on_orders_done(self, ts: int, order_ids) -> None:
        """``on_order_done`` for many orders at once (risk cancels): the open quantities are
        released order by order, the margin caches refreshed once per position touched. The
        final state equals the one-by-one calls (the refresh depends only on the position)."""
        orders, participants, inst = self._orders, self._participants, self._inst
        touched: dict[tuple[str, int], tuple[ParticipantState, PositionState]] = {}
        for order_id in order_ids:
            o = orders.pop(order_id, None)
            if o is None:
                continue
            p = participants[o.participant]
            del p.orders[order_id]
            ps = p.positions[o.instrument_id]
            if o.is_buy:
                ps.open_buy -= o.remaining
            else:
                ps.open_sell -= o.remaining
            touched[(o.participant, o.instrument_id)] = (p, ps)
        for (_, iid), (p, ps) in touched.items():
            ins = inst[iid]
            self._refresh_initial(p, ins, ps)
            self._maybe_release_holder(p, ins, ps)

    def hold(self, participant: str) -> ExposureHold:
        """Start a tentative change of ``participant``'s open exposure, for deciding the sides of
        one mass quote in turn as if each were already entered (and what it replaces gone): see
        ``ExposureHold``. The caller must ``restore()`` it (try/finally) before anything else
        touches the engine; then it has changed nothing."""
        return ExposureHold(self, participant)

    def on_order_replaced(self, ts: int, order_id: int, price: int, remaining: int) -> None:
        """Engine Replaced event: new price and remaining (open) quantity."""
        o = self._orders.get(order_id)
        if o is None:
            return
        p = self._participants[o.participant]
        ins = self._inst[o.instrument_id]
        # Via _position: a fill may have left the order at nothing open and released its holder; a
        # replace that opens quantity again makes the participant a holder again (re-marked).
        ps = self._position(p, ins)
        if o.is_buy:
            ps.open_buy += remaining - o.remaining
        else:
            ps.open_sell += remaining - o.remaining
        o.price, o.remaining = price, remaining
        self._refresh_initial(p, ins, ps)

    def on_trade(self, ts: int, instrument_id: int, price: int, quantity: int, buyer: str, seller: str,
                 buy_order_id: int = 0, sell_order_id: int = 0) -> list[RiskEvent]:
        """One execution (engine Trade event), in sequence order: moves positions and cash, fills
        the open orders, moves the reference/mark price to ``price``, feeds the volatility
        estimator, re-marks every holder of the instrument and evaluates margin calls and the
        daily-loss breaker. Returns the events to journal and act on."""
        events: list[RiskEvent] = []
        self._roll_day(ts, events)
        ins = self._inst.get(instrument_id)
        if ins is None:
            return events
        notional = price * quantity * ins.mult
        for oid, who, is_buy in ((buy_order_id, buyer, True), (sell_order_id, seller, False)):
            p = self._participant(who)
            ps = self._position(p, ins)
            o = self._orders.get(oid) if oid else None
            if o is not None and o.participant == who:
                fill = quantity if quantity < o.remaining else o.remaining
                o.remaining -= fill
                if is_buy:
                    ps.open_buy -= fill
                else:
                    ps.open_sell -= fill
            if is_buy:
                ps.pos += quantity
                ps.cash -= notional
            else:
                ps.pos -= quantity
                ps.cash += notional
        moved = price != ins.ref
        ins.ref = price
        vol = ins.vol
        if vol.observe(ts, price) and vol.update_factor():
            self._on_factor_change(ts, ins, events)
        # a new mark re-marks every holder; an unchanged one only the two counterparties
        for pid in list(ins.holders) if moved else dict.fromkeys((buyer, seller)):
            p = self._participants[pid]
            ps = p.positions[instrument_id]
            self._remark(p, ins, ps)
            self._maybe_release_holder(p, ins, ps)
            self._evaluate(ts, p, events)
        return events

    def on_engine_trade(self, ts: int, trade, maker_participant: str, taker_participant: str) -> list[RiskEvent]:
        """Convenience for a ``matching.types.Trade``: maps maker/taker to buyer/seller."""
        if trade.aggressor_side == _BUY:
            return self.on_trade(ts, trade.instrument_id, trade.price, trade.quantity, taker_participant,
                                 maker_participant, trade.taker_order_id, trade.maker_order_id)
        return self.on_trade(ts, trade.instrument_id, trade.price, trade.quantity, maker_participant,
                             taker_participant, trade.maker_order_id, trade.taker_order_id)

    def on_top_of_book(self, ts: int, instrument_id: int, bid: int, ask: int) -> list[RiskEvent]:
        """Engine TopOfBook event (0 = empty side): drives the LULD limit state and pause."""
        events: list[RiskEvent] = []
        ins = self._inst.get(instrument_id)
        if ins is None:
            return events
        ins.luld.on_quote(ts, ins.ref, ins.band_bps, bid, ask, events)
        self._sync_luld(ins)
        return events

    # -- MARGIN AND P&L ------------------------------------------------------------------------

    def _refresh_initial(self, p: ParticipantState, ins: InstrumentState, ps: PositionState) -> None:
        mg, mark, ac = ins.margin, ins.ref, ins.ac
        long_x = ps.pos + ps.open_buy
        short_x = ps.pos - ps.open_sell
        sl = mg.scan(long_x, mark)
        ss = mg.scan(short_x, mark)
        scan, delta = (sl, mg.delta(long_x, mark)) if sl >= ss else (ss, mg.delta(short_x, mark))
        if scan != ps.scan_i or delta != ps.delta_i:
            p.scan_i[ac] += scan - ps.scan_i
            p.delta_i[ac] += delta - ps.delta_i
            ps.scan_i, ps.delta_i = scan, delta
            g = self._model.gross_initial_class(ac, p.scan_i[ac])
            p.gross += g - p.gross_cls[ac]
            p.gross_cls[ac] = g
            p.initial_dirty = True

    def _remark(self, p: ParticipantState, ins: InstrumentState, ps: PositionState) -> None:
        mg, mark, ac = ins.margin, ins.ref, ins.ac
        pnl = mg.to_base(ps.cash + ps.pos * mark * ins.mult)
        p.pnl += pnl - ps.pnl
        ps.pnl = pnl
        scan, delta = mg.scan(ps.pos, mark), mg.delta(ps.pos, mark)
        if scan != ps.scan_m or delta != ps.delta_m:
            p.scan_m[ac] += scan - ps.scan_m
            p.scan_m_total += scan - ps.scan_m
            p.delta_m[ac] += delta - ps.delta_m
            ps.scan_m, ps.delta_m = scan, delta
            p.maint_dirty = True
        self._refresh_initial(p, ins, ps)

    def _maint(self, p: ParticipantState) -> int:
        if p.maint_dirty:
            p.maint = self._model.maintenance(p.scan_m, p.delta_m)
            p.maint_dirty = False
        return p.maint

    def _initial(self, p: ParticipantState) -> int:
        if p.initial_dirty:
            p.initial = self._model.initial(p.scan_i, p.delta_i)
            p.initial_dirty = False
        return p.initial

    @staticmethod
    def _maybe_release_holder(p: ParticipantState, ins: InstrumentState, ps: PositionState) -> None:
        if ps.pos == 0 and ps.open_buy == 0 and ps.open_sell == 0:
            ins.holders.pop(p.pid, None)  # P&L is now constant cash: no more re-marking needed

    def _evaluate(self, ts: int, p: ParticipantState, events: list[RiskEvent]) -> None:
        """Daily-loss breaker and margin call, after anything that moved equity or maintenance."""
        equity = p.collateral_base + p.pnl
        anchor = p.day_anchor
        if p.kill_mode == 0 and anchor > 0 and (anchor - equity) * 10_000 >= anchor * self._max_loss_bps:
            events.append(DailyLossBreached(ts=ts, participant_id=p.pid, day_start_equity=anchor, equity=equity,
                                            loss=anchor - equity))
            self._set_kill(ts, Scope.PARTICIPANT, p.pid, KillMode.REDUCE_ONLY, KillReason.DAILY_LOSS, "", events)
        if p.margin_call < 0:
            if equity < p.scan_m_total and equity < self._maint(p):  # the bound spares the exact sum
                p.margin_call = ts
                p.reduce_only_from = ts + self._grace
                self._margin_called[p.pid] = None
                events.append(MarginCall(ts=ts, participant_id=p.pid, equity=equity, maintenance=p.maint,
                                         reduce_only_at=p.reduce_only_from))
                if self._grace == 0:
                    self._start_reduce_only(ts, p, events)
        elif equity >= self._maint(p):
            events.append(MarginCallResolved(ts=ts, participant_id=p.pid, equity=equity, maintenance=p.maint))
            if p.reduce_only_announced:
                events.append(ReduceOnlyEnded(ts=ts, participant_id=p.pid))
            p.margin_call = -1
            p.reduce_only_from = NEVER
            p.reduce_only_announced = False
            self._margin_called.pop(p.pid, None)

    def _start_reduce_only(self, ts: int, p: ParticipantState, events: list[RiskEvent]) -> None:
        p.reduce_only_announced = True
        events.append(ReduceOnlyStarted(ts=p.reduce_only_from, participant_id=p.pid))
        ids = tuple(sorted(p.orders))
        if ids:
            events.append(CancelOrders(ts=p.reduce_only_from, cause=CancelCause.MARGIN_REDUCE_ONLY,
                                       scope=Scope.PARTICIPANT, target=p.pid, order_ids=ids))

    def deposit(self, ts: int, participant: str, currency: str, amount: int) -> list[RiskEvent]:
        """Collateral in (amount > 0) or out (< 0), minor units of ``currency``; deposits and
        withdrawals move the daily-loss anchor with them (they are not profit or loss).
        Use ``check_withdrawal`` first for withdrawals."""
        rates = dict(self.config.margin.fx_rates)
        if currency not in rates:
            raise ValueError(f"no FX rate for {currency!r}")
        events: list[RiskEvent] = []
        self._roll_day(ts, events)
        p = self._participant(participant)
        balance = p.collateral.get(currency, 0) + amount
        p.collateral[currency] = balance
        before = p.collateral_base
        p.collateral_base = sum(collateral_to_base(c, a, self.config.margin) for c, a in sorted(p.collateral.items()))
        p.day_anchor += p.collateral_base - before
        events.append(CollateralChanged(ts=ts, participant_id=participant, currency=currency, amount=amount,
                                        balance=balance))
        self._evaluate(ts, p, events)
        return events

    def check_withdrawal(self, participant: str, currency: str, amount: int) -> RiskReject | None:
        """MARGIN if taking ``amount`` (> 0) out would leave equity below the initial requirement."""
        p = self._participants.get(participant) or self._blank
        if p.collateral.get(currency, 0) < amount:
            return _R_MARGIN
        left = dict(p.collateral)
        left[currency] -= amount
        base = sum(collateral_to_base(c, a, self.config.margin) for c, a in sorted(left.items()))
        return _R_MARGIN if base + p.pnl < self._initial(p) else None

    # -- LIMITS --------------------------------------------------------------------------------

    def _on_factor_change(self, ts: int, ins: InstrumentState, events: list[RiskEvent]) -> None:
        factor, vol_bps = ins.vol.factor_bps, ins.vol.vol_bps()
        ins.limit = scaled_limit(ins.base_limit, factor, ins.lot)
        events.append(PositionLimitChanged(ts=ts, instrument_id=ins.iid, participant_id="", factor_bps=factor,
                                           base_limit=ins.base_limit, limit=ins.limit, vol_bps=vol_bps))
        for pid in sorted(self._participants):
            base = self._participants[pid].limit_bases.get(ins.iid)
            if base is not None:
                events.append(PositionLimitChanged(ts=ts, instrument_id=ins.iid, participant_id=pid,
                                                   factor_bps=factor, base_limit=base,
                                                   limit=scaled_limit(base, factor, ins.lot), vol_bps=vol_bps))

    def set_position_limit(self, ts: int, participant: str, instrument_id: int, base_limit: int | None) -> list[RiskEvent]:
        """Operator: set (or with None, remove) a participant's base position limit."""
        ins = self._inst[instrument_id]
        p = self._participant(participant)
        if base_limit is None:
            p.limit_bases.pop(instrument_id, None)
            base = ins.base_limit
        else:
            if base_limit < 0:
                raise ValueError("base_limit must not be negative")
            p.limit_bases[instrument_id] = base = base_limit
        factor = ins.vol.factor_bps
        return [PositionLimitChanged(ts=ts, instrument_id=instrument_id, participant_id=participant, factor_bps=factor,
                                     base_limit=base, limit=scaled_limit(base, factor, ins.lot),
                                     vol_bps=ins.vol.vol_bps())]

    def position_limit(self, participant: str, instrument_id: int) -> int:
        ins = self._inst[instrument_id]
        p = self._participants.get(participant) or self._blank
        base = p.limit_bases.get(instrument_id)
        return ins.limit if base is None else scaled_limit(base, ins.vol.factor_bps, ins.lot)

    # -- KILL SWITCHES AND BREAKERS ------------------------------------------------------------

    @staticmethod
    def _target(scope: Scope, target: AssetClass | str | int | None) -> str:
        if scope == Scope.HUB:
            return ""
        if scope == Scope.ASSET_CLASS:
            return AssetClass(target).name if not isinstance(target, str) else AssetClass[target.upper()].name
        if scope == Scope.PARTICIPANT:
            if not isinstance(target, str) or not target:
                raise ValueError("a participant kill needs the participant id")
            return target
        raise ValueError(f"scope {scope!r} cannot be killed")

    def kill(self, ts: int, scope: Scope, target: AssetClass | str | None = None, *, mode: KillMode = KillMode.BLOCK,
             reason: KillReason = KillReason.OPERATOR, operator: str = "", note: str = "",
             list_hub_orders: bool = True) -> list[RiskEvent]:
        """Set (or strengthen) a kill switch: effective for the very next check, returns
        KillSwitchActivated and CancelOrders for every open order in scope. Idempotent: an equal
        or stronger active switch makes this a no-op (no events).

        ``list_hub_orders=False``, for a caller that cancels everything in every book itself when
        the whole hub is BLOCKed (the hub does, natively): that CancelOrders then lists no ids
        (``order_ids == ()``) instead of every open order, which costs about half a millisecond
        with 10,000 of them in a cold heap, before anyone else can be refused."""
        events: list[RiskEvent] = []
        self._set_kill(ts, Scope(scope), self._target(Scope(scope), target), KillMode(mode), KillReason(reason),
                       operator, events, note, list_hub_orders)
        return events

    def _set_kill(self, ts: int, scope: Scope, target: str, mode: KillMode, reason: KillReason, operator: str,
                  events: list[RiskEvent], note: str = "", list_hub_orders: bool = True) -> None:
        if not self._kills.set(ts, scope, target, mode, reason, operator, note):
            return
        # The switch is on from here. The orders in scope are listed in entry order, not sorted: the
        # engines sort what they cancel, and sorting 10,000 ids scattered through a cold heap took
        # about a millisecond that every order arriving during a kill waited for.
        unlisted = False
        if scope == Scope.HUB:
            self._hub_mode = int(mode)
            unlisted = not list_hub_orders and mode == KillMode.BLOCK
            ids = () if unlisted else tuple(self._orders)
        elif scope == Scope.ASSET_CLASS:
            ac = int(AssetClass[target])
            self._class_mode[ac] = int(mode)
            ids = tuple(oid for oid, o in self._orders.items() if self._inst[o.instrument_id].ac == ac)
        else:
            p = self._participant(target)
            p.kill_mode = int(mode)
            ids = tuple(sorted(p.orders))
        events.append(KillSwitchActivated(ts=ts, scope=scope, target=target, mode=mode, reason=reason, operator=operator,
                                          note=note))
        if ids or (unlisted and self._orders):
            events.append(CancelOrders(ts=ts, cause=_CANCEL_CAUSE[reason], scope=scope, target=target, order_ids=ids))

    def kill_from_record(self, record: dict) -> list[RiskEvent]:
        """Replay a journaled ``KillSwitchActivated.record()`` (operator or latency kill)."""
        events: list[RiskEvent] = []
        scope = Scope(record["scope"])
        self._set_kill(record["ts"], scope, self._target(scope, record["target"] or None), KillMode(record["mode"]),
                       KillReason(record["reason"]), record["operator"], events, record.get("note", ""))
        return events

    def lift(self, ts: int, scope: Scope, target: AssetClass | str | None = None, *, operator: str = "") -> list[RiskEvent]:
        """Operator only: clear the switch at exactly this scope and target (whatever set it).
        Lifting a participant re-bases its daily-loss anchor at its current equity."""
        scope = Scope(scope)
        key = self._target(scope, target)
        if not self._kills.lift(scope, key):
            return []
        if scope == Scope.HUB:
            self._hub_mode = 0
        elif scope == Scope.ASSET_CLASS:
            self._class_mode[int(AssetClass[key])] = 0
        else:
            p = self._participant(key)
            p.kill_mode = 0
            p.day_anchor = p.equity
        return [KillSwitchLifted(ts=ts, scope=scope, target=key, operator=operator)]

    def orders_under_block(self) -> tuple[int, ...]:
        """Open orders in the scope of an active BLOCK switch (the hub, their asset class or their
        participant), sorted. Setting such a switch cancels every order in its scope and it admits
        no new ones, so any found here are cancels a crash interrupted. (A REDUCE_ONLY switch
        admits reducing orders, which may rest: none of those are listed.)"""
        if self._hub_mode >= _BLOCK:
            return tuple(sorted(self._orders))
        classes, participants, inst = self._class_mode, self._participants, self._inst
        return tuple(sorted(oid for oid, o in self._orders.items()
                            if classes[inst[o.instrument_id].ac] >= _BLOCK or participants[o.participant].kill_mode >= _BLOCK))

    def kill_mode(self, scope: Scope, target: AssetClass | str | None = None) -> KillMode:
        return self._kills.mode(Scope(scope), self._target(Scope(scope), target))

    def on_ack_latency(self, ts: int, asset_class: AssetClass | int, latency_ns: int) -> list[RiskEvent]:
        """Measured order-to-ack latency of one order. The third consecutive sample above the
        threshold in a class kills that class (BLOCK, reason LATENCY). The run counter is
        live-only; the hub journals the resulting kill and replays it with ``kill(...)``."""
        if not self._latency.observe(int(asset_class), latency_ns):
            return []
        return self.kill(ts, Scope.ASSET_CLASS, AssetClass(asset_class), mode=KillMode.BLOCK,
                         reason=KillReason.LATENCY, operator="latency-monitor")

    def on_session_lost(self, ts: int, session: str) -> list[RiskEvent]:
        """Heartbeat lost / involuntary disconnect of a cancel-on-disconnect session: cancel its
        resting non-GTC orders and drop its rate bucket."""
        self._sessions.pop(session, None)
        ids = tuple(sorted(oid for oid, o in self._orders.items() if o.session == session and not o.persistent))
        if not ids:
            return []
        return [CancelOrders(ts=ts, cause=CancelCause.SESSION_LOST, scope=Scope.SESSION, target=session, order_ids=ids)]

    def on_session_closed(self, ts: int, session: str) -> None:
        """Orderly logout: forget the session's rate bucket (its orders stay)."""
        self._sessions.pop(session, None)

    # -- TIME ----------------------------------------------------------------------------------

    def _roll_day(self, ts: int, events: list[RiskEvent], first: bool = True) -> None:
        """Every day boundary re-anchors the daily loss (with an event). The first trade or
        deposit opens the first day silently; ``tick`` (first=False) never does, so that a tick
        returning no events has changed nothing and need not be journaled."""
        day = (ts - self._day_offset) // DAY_NS
        if self._day is None:
            if first:
                self._day = day
        elif day > self._day:
            self._day = day
            for pid in sorted(self._participants):
                p = self._participants[pid]
                p.day_anchor = p.collateral_base + p.pnl
            events.append(TradingDayStarted(ts=ts, day=day))

    def _sync_luld(self, ins: InstrumentState) -> None:
        w = ins.luld.window()
        if w is None:
            self._luld_block.pop(ins.iid, None)
        else:
            self._luld_block[ins.iid] = w

    def tick(self, ts: int) -> list[RiskEvent]:
        """Time-driven transitions due by ``ts``: trading-day roll, LULD pause/resume, end of a
        margin-call grace (reduce-only and its cancels). Returns [] when nothing was due, and
        then changes nothing, so the hub journals (and replays) only ticks that returned events."""
        events: list[RiskEvent] = []
        self._roll_day(ts, events, first=False)
        for iid in sorted(self._luld_block):
            ins = self._inst[iid]
            if ins.luld.phase != Phase.NORMAL:
                ins.luld.advance(ts, ins.ref, ins.band_bps, events)
                self._sync_luld(ins)
        for pid in list(self._margin_called):
            p = self._participants[pid]
            if not p.reduce_only_announced and ts >= p.reduce_only_from:
                self._start_reduce_only(ts, p, events)
        return events

    def is_paused(self, ts: int, instrument_id: int) -> bool:
        w = self._luld_block.get(instrument_id)
        return w is not None and w[0] <= ts < w[1]

    # -- QUERIES -------------------------------------------------------------------------------

    def reference_price(self, instrument_id: int) -> int:
        return self._inst[instrument_id].ref

    def protected_price(self, instrument_id: int, side: int) -> int:
        """The furthest price a market order may trade at: the price band's edge on its side (the
        price ``check_order`` decides a market order at), on the tick grid inside the band, and never
        below one tick. The hub sends market orders to the engine as limit orders at this price."""
        ins = self._inst[instrument_id]
        width = ins.ref * ins.band_bps // 10_000
        tick = ins.inst.tick_size
        if side == _BUY:
            return max(tick, (ins.ref + width) // tick * tick)
        return max(tick, -(-(ins.ref - width) // tick) * tick)

    def limit_factor_bps(self, instrument_id: int) -> int:
        return self._inst[instrument_id].vol.factor_bps

    def volatility_bps(self, instrument_id: int) -> int:
        return self._inst[instrument_id].vol.vol_bps()

    def position(self, participant: str, instrument_id: int) -> tuple[int, int, int]:
        """(position, open buy quantity, open sell quantity)."""
        p = self._participants.get(participant)
        ps = p.positions.get(instrument_id) if p else None
        return (ps.pos, ps.open_buy, ps.open_sell) if ps else (0, 0, 0)

    def margin(self, participant: str) -> MarginSnapshot:
        p = self._participants.get(participant) or self._blank
        return MarginSnapshot(participant, p.collateral_base, p.pnl, p.equity, self._maint(p), self._initial(p),
                              p.day_anchor,
                              p.margin_call, p.reduce_only_from, KillMode(p.kill_mode))

    def participant_view(self, ts: int, participant: str) -> ParticipantRiskView:
        """The participant's own risk state at ``ts`` (pure; limits for every instrument)."""
        p = self._participants.get(participant) or self._blank
        limits = []
        for iid in sorted(self._inst):
            ps = p.positions.get(iid)
            limits.append(InstrumentLimitView(iid, self.position_limit(participant, iid),
                                              self._inst[iid].vol.factor_bps, ps.pos if ps else 0,
                                              ps.open_buy if ps else 0, ps.open_sell if ps else 0))
        switches = [{"scope": Scope(s).name, "target": t, "mode": KillMode(m).name, "reason": KillReason(r).name,
                     "since": since, "operator": op, "note": note}
                    for s, t, m, r, since, op, note in self._kills.state()
                    if s == Scope.HUB or (s == Scope.PARTICIPANT and t == participant) or s == Scope.ASSET_CLASS]
        modes = [self._hub_mode, p.kill_mode]
        equity = p.collateral_base + p.pnl
        detail = {
            "collateral": dict(sorted(p.collateral.items())), "collateral_base": p.collateral_base, "pnl": p.pnl,
            "day_start_equity": p.day_anchor, "daily_loss": p.day_anchor - equity,
            "daily_loss_limit": p.day_anchor * self._max_loss_bps // 10_000,
            "margin_call_since": p.margin_call, "reduce_only_from": None if p.reduce_only_from == NEVER else p.reduce_only_from,
            "kill_switches": switches,
            "paused_instruments": sorted(i for i in self._luld_block if self.is_paused(ts, i)),
        }
        return ParticipantRiskView(
            participant, self.config.margin.base_currency, equity, self._initial(p), self._maint(p), p.margin_call >= 0,
            max(modes) == _REDUCE_ONLY or ts >= p.reduce_only_from, max(modes) == _BLOCK, tuple(limits), detail)

    def kill_switches(self) -> list[tuple[Scope, str, KillMode, KillReason, int, str, str]]:
        """Active switches: (scope, target, mode, reason, since, operator, note), sorted."""
        return [(Scope(s), t, KillMode(m), KillReason(r), since, op, note)
                for s, t, m, r, since, op, note in self._kills.state()]

    def open_order_ids(self, participant: str | None = None) -> list[int]:
        if participant is None:
            return sorted(self._orders)
        p = self._participants.get(participant)
        return sorted(p.orders) if p else []

    # -- DIGEST AND SELF-CHECK -----------------------------------------------------------------

    def state_digest(self) -> bytes:
        """SHA-256 over a canonical, sorted encoding of the primary risk state (see state.py)."""
        d = Digest()
        d.text("compliance.risk/v1")
        d.raw(self._fingerprint)
        d.tag("day")
        d.int(-1 if self._day is None else self._day)
        d.tag("kills")
        for scope, target, mode, reason, since, operator, note in self._kills.state():
            d.ints((scope, mode, reason, since))
            d.text(target)
            d.text(operator)
            d.text(note)
        d.tag("instruments")
        for iid in sorted(self._inst):
            ins = self._inst[iid]
            d.ints((iid, ins.ref, *ins.vol.state(), *ins.luld.state()))
        d.tag("participants")
        for pid in sorted(self._participants):
            p = self._participants[pid]
            d.text(pid)
            d.ints((p.day_anchor, p.margin_call, p.reduce_only_from, int(p.reduce_only_announced), p.kill_mode))
            d.int(len(p.collateral))
            for ccy in sorted(p.collateral):
                d.text(ccy)
                d.int(p.collateral[ccy])
            d.ints(x for iid in sorted(p.limit_bases) for x in (iid, p.limit_bases[iid]))
            d.ints(x for iid in sorted(p.positions) for x in (iid, p.positions[iid].pos, p.positions[iid].cash,
                                                               p.positions[iid].open_buy, p.positions[iid].open_sell))
            d.ints(x for iid in sorted(p.buckets) for x in (iid, *p.buckets[iid]))
        d.tag("orders")
        orders = self._orders
        d.encoded(b"".join([orders[oid].digest_bytes(oid) for oid in sorted(orders)]))
        d.tag("sessions")
        for sid in sorted(self._sessions):
            d.text(sid)
            d.ints(self._sessions[sid])
        return d.digest()

    def verify(self) -> None:
        """Recompute every derived cache from the primary state; AssertionError on a mismatch.
        (Tests and recovery use it to prove the incremental bookkeeping.)"""
        model = self._model
        for pid, p in self._participants.items():
            scan_m, delta_m = [0] * N_CLASSES, [0] * N_CLASSES
            scan_i, delta_i = [0] * N_CLASSES, [0] * N_CLASSES
            pnl = 0
            open_orders: dict[int, list[int]] = {}
            for oid in p.orders:
                o = self._orders[oid]
                assert o.participant == pid, (pid, oid)
                acc = open_orders.setdefault(o.instrument_id, [0, 0])
                acc[0 if o.is_buy else 1] += o.remaining
            for iid, ps in p.positions.items():
                ins = self._inst[iid]
                mg, mark, ac = ins.margin, ins.ref, ins.ac
                assert [ps.open_buy, ps.open_sell] == open_orders.get(iid, [0, 0]), (pid, iid, "open quantity")
                v = mg.to_base(ps.cash + ps.pos * mark * ins.mult)
                assert ps.pnl == v, (pid, iid, "pnl", ps.pnl, v)
                pnl += v
                scan_m[ac] += mg.scan(ps.pos, mark)
                delta_m[ac] += mg.delta(ps.pos, mark)
                lx, sx = ps.pos + ps.open_buy, ps.pos - ps.open_sell
                sl, ss = mg.scan(lx, mark), mg.scan(sx, mark)
                scan_i[ac] += max(sl, ss)
                delta_i[ac] += mg.delta(lx if sl >= ss else sx, mark)
                held = ps.pos != 0 or ps.open_buy != 0 or ps.open_sell != 0
                assert not held or pid in ins.holders, (pid, iid, "holder")
            assert p.pnl == pnl, (pid, "pnl total")
            assert (p.scan_m, p.delta_m, p.scan_i, p.delta_i) == (scan_m, delta_m, scan_i, delta_i), (pid, "classes")
            assert self._maint(p) == model.maintenance(scan_m, delta_m), (pid, "maintenance")
            assert self._initial(p) == model.initial(scan_i, delta_i), (pid, "initial")
            assert p.scan_m_total == sum(scan_m), (pid, "maintenance bound")
            assert p.gross == sum(model.gross_initial_class(c, scan_i[c]) for c in model.classes), (pid, "gross")
            base = sum(collateral_to_base(c, a, self.config.margin) for c, a in sorted(p.collateral.items()))
            assert p.collateral_base == base, (pid, "collateral")
        for ins in self._inst.values():
            assert self._luld_block.get(ins.iid) == ins.luld.window(), (ins.iid, "luld window")


class ExposureHold:
    """A tentative change of one participant's open exposure (hot path of mass quotes).

    ``release(order_ids)`` takes the participant's open orders out of its open quantities (the quotes a
    mass quote replaces) and ``add(instrument_id, side, quantity)`` adds a side that passed its check,
    each followed by the same margin-cache refresh ``on_order_entered``/``on_order_done`` do, so the
    next ``check_order`` decides with them counted. Orders, tokens and holders are not touched.
    ``restore()`` puts back every value it changed, so the engine is exactly as before: the hub then
    enters what it sequenced through the ordinary calls (``on_quotes_entered``/``on_order_entered``,
    the engine's Cancelled events), the calls replay makes from the ledger. So nothing of a hold can
    reach the state digest, and a message the hub then fails to sequence (ledger down, hub
    stopping) leaves nothing to undo. A side the engine itself then refuses (a post-only side that
    would cross) was counted for the sides after it: conservative, as the outcome is not known yet."""

    __slots__ = ("_engine", "_p", "_new_participant", "_saved", "_positions")

    def __init__(self, engine: RiskEngine, participant: str) -> None:
        self._engine = engine
        self._new_participant = participant not in engine._participants
        p = self._p = engine._participant(participant)
        # the per-class caches are replaced (not mutated) by restore: copies of the lists
        self._saved: tuple | None = (p.scan_i[:], p.delta_i[:], p.gross_cls[:], p.gross, p.initial, p.initial_dirty)
        # instrument id -> (position, open_buy, open_sell, scan_i, delta_i, created here)
        self._positions: dict[int, tuple[PositionState, int, int, int, int, bool]] = {}

    def _held(self, iid: int) -> PositionState:
        saved = self._positions.get(iid)
        if saved is not None:
            return saved[0]
        ps = self._p.positions.get(iid)
        created = ps is None
        if created:  # not via _position: holders are left alone (restore deletes the position)
            ps = self._p.positions[iid] = PositionState()
        self._positions[iid] = (ps, ps.open_buy, ps.open_sell, ps.scan_i, ps.delta_i, created)
        return ps

    def release(self, order_ids: Iterable[int]) -> None:
        """Count the participant's open orders ``order_ids`` as gone (others' and unknown ids: ignored)."""
        engine, p = self._engine, self._p
        orders = engine._orders
        touched: dict[int, PositionState] = {}
        for oid in order_ids:
            o = orders.get(oid)
            if o is None or o.participant != p.pid:
                continue
            ps = touched.get(o.instrument_id) or self._held(o.instrument_id)
            touched[o.instrument_id] = ps
            if o.is_buy:
                ps.open_buy -= o.remaining
            else:
                ps.open_sell -= o.remaining
        for iid, ps in touched.items():  # once per position, as on_orders_done (it depends on the position only)
            engine._refresh_initial(p, engine._inst[iid], ps)

    def add(self, instrument_id: int, side: int, quantity: int) -> None:
        """Count a new open order of ``quantity`` on ``side`` (unknown instruments: ignored)."""
        ins = self._engine._inst.get(instrument_id)
        if ins is None:
            return
        saved = self._positions.get(instrument_id)
        ps = saved[0] if saved is not None else self._held(instrument_id)
        if side == _BUY:
            ps.open_buy += quantity
        else:
            ps.open_sell += quantity
        self._engine._refresh_initial(self._p, ins, ps)

    def restore(self) -> None:
        """Put the participant back exactly as it was when the hold began. Idempotent."""
        if self._saved is None:
            return
        p = self._p
        p.scan_i, p.delta_i, p.gross_cls, p.gross, p.initial, p.initial_dirty = self._saved
        self._saved = None
        for iid, (ps, open_buy, open_sell, scan_i, delta_i, created) in self._positions.items():
            ps.open_buy, ps.open_sell, ps.scan_i, ps.delta_i = open_buy, open_sell, scan_i, delta_i
            if created:
                del p.positions[iid]
        self._positions = {}
        if self._new_participant:
            self._engine._participants.pop(p.pid, None)
            self._new_participant = False
