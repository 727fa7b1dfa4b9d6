"""The fairness behaviours over gRPC: a real server on loopback, the real clock, real clients.

Durations are long (floor 200 ms with the scalper 10 ms behind; minimum resting time 100 ms;
batch windows of 300-400 ms) so that thread scheduling on a busy machine does not upset what a
test sets up: each step waits until the hub holds the previous request (``scheduler.pending``)
before it sends the next, and every timing assertion is made on hub times from the acks and the
journal (arrival and release), which the hub's clock stamps, not on the client's clock. Where a
scenario needs a timing to hold (the scalper's order arriving before the institution's is
released, a cancel arriving before the minimum has passed, all of a batch inside one window), it
checks that on the journal's hub times; if a stall of the machine broke it, the scenario runs
again on a fresh hub (``SetupMissed``, at most 3 attempts), and fails if it never held.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import grpc
import pytest

from hub.client import HubClient
from hub.core import Hub
from hub.fairness import FairnessConfig, Preset, RestingMode, batch_permutation
from hub.journal import EntryKind
from hub.server import run_server
from hub.v1 import common_pb2 as cpb
from matching.types import AssetClass
from tests.fairness.support import FX_LOT, FX_REF, TICK, P, config_with, wait_until

HOST = "127.0.0.1"
FLOOR = 200_000_000
OFFSET_S = 0.010
MIN_REST = 100_000_000
WINDOW = (300_000_000, 400_000_000)
ATTEMPTS = 3


class Venue:
    """A running hub and its clients (all closed at teardown)."""

    def __init__(self, hub: Hub, port: int) -> None:
        self.hub = hub
        self.target = f"{HOST}:{port}"
        self.clients: list[HubClient] = []

    def client(self, participant: str) -> HubClient:
        c = HubClient(self.target, f"dev-{participant}", timeout=10.0)
        self.clients.append(c)
        return c

    def entry(self, seq: int):
        [found] = [e for e in self.hub.journal.entries() if e.seq_first == seq]
        return found

    def times(self, ack) -> tuple[int, int]:
        """(arrival, release) hub times the journal recorded for the command of ``ack``."""
        e = self.entry(ack.sequence)
        assert e.kind == EntryKind.ENGINE and e.ts == ack.hub_time_ns
        return e.arrival_ns, e.ts

    def wait_held(self, count: int, futures: list[Future]) -> None:
        """Until the hub holds ``count`` requests, or one of ``futures`` came back (released early:
        the scenario's timing check then decides)."""
        wait_until(lambda: self.hub.scheduler.pending >= count or any(f.done() for f in futures), timeout=20,
                   what=f"{count} held requests")


class SetupMissed(Exception):
    """A stall of the machine broke the scenario's timing (seen on hub times): run it again."""


def setup_held(condition: bool, what: str) -> None:
    if not condition:
        raise SetupMissed(what)


def attempts(venue: Callable[[FairnessConfig], Venue], fairness: FairnessConfig, scenario: Callable[[Venue], None]):
    missed = []
    for _ in range(ATTEMPTS):
        try:
            return scenario(venue(fairness))
        except SetupMissed as exc:
            missed.append(str(exc))
    pytest.fail(f"the scenario's timing never held in {ATTEMPTS} attempts: {missed}")


@pytest.fixture
def venue() -> Iterator[Callable[[FairnessConfig], Venue]]:
    running: list[tuple[object, Venue]] = []

    def start(fairness: FairnessConfig) -> Venue:
        config = config_with(fairness).with_network(host=HOST, port=0)
        cm = run_server(config, grace=0.5)
        hub, port = cm.__enter__()
        v = Venue(hub, port)
        running.append((cm, v))
        return v

    yield start
    for cm, v in reversed(running):
        for c in v.clients:
            c.close()
        cm.__exit__(None, None, None)


def in_thread(fn: Callable, *args, **kwargs) -> Future:
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test through the future
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _fills(ack) -> list[int]:
    return [r.last_quantity for r in ack.executions if r.exec_type == cpb.EXEC_TRADE]


def _entry_kind(mode: str, client: HubClient):
    """Unary calls, or a streaming session, for one participant."""
    return client if mode == "unary" else client.open_session(timeout=10)


# -- LATENCY FLOOR -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["unary", "session"])
def test_grpc_scalper_order_10ms_after_an_institution_order_is_sequenced_first_and_takes_the_ask(venue, mode):
    def scenario(v: Venue) -> None:
        inst = _entry_kind(mode, v.client("inst-1"))
        scalper = _entry_kind(mode, v.client("scalper-1"))
        assert v.client("mm-1").submit("AAPL", "sell", 10, P).accepted
        held = in_thread(inst.submit, "AAPL", "buy", 10, P)
        v.wait_held(1, [held])
        time.sleep(OFFSET_S)
        fast = scalper.submit("AAPL", "buy", 10, P)
        slow = held.result(timeout=10)
        assert fast.accepted and slow.accepted
        inst_arrival, inst_release = v.times(slow)
        scalper_arrival, scalper_release = v.times(fast)
        assert inst_arrival < scalper_arrival
        setup_held(scalper_arrival < inst_arrival + FLOOR, "the scalper's order came after the floor had passed")
        assert fast.sequence < slow.sequence
        assert inst_release >= inst_arrival + FLOOR
        assert scalper_release - scalper_arrival < FLOOR  # it waited for nothing
        assert _fills(fast) == [10] and fast.executions[-1].exec_type == cpb.EXEC_FILLED
        assert [r.exec_type for r in slow.executions] == [cpb.EXEC_NEW]  # nothing left to take: it rests

    attempts(venue, FairnessConfig(preset=Preset.PARTICIPANT_CLASS, latency_floor_ns=FLOOR), scenario)


@pytest.mark.parametrize("mode", ["unary", "session"])
def test_grpc_an_institutions_mass_quote_waits_behind_the_floor_and_a_scalper_10ms_later_goes_first(venue, mode):
    def scenario(v: Venue) -> None:
        inst = _entry_kind(mode, v.client("inst-1"))
        held = in_thread(inst.mass_quote, [("AAPL", P - 100, 10, P + 100, 10)])
        v.wait_held(1, [held])
        time.sleep(OFFSET_S)
        fast = v.client("scalper-1").submit("AAPL", "sell", 10, P + 100)
        slow = held.result(timeout=10)
        assert fast.accepted and slow.accepted
        [quote] = slow.quotes
        assert quote.bid_order_id and quote.ask_order_id and not quote.ask_reject_reason
        quote_entry = v.entry(quote.bid_order_id)
        setup_held(v.times(fast)[0] < quote_entry.arrival_ns + FLOOR, "the scalper's order came after the floor")
        assert fast.sequence < quote.bid_order_id  # the scalper's ask rests first: the quote's ask joins it
        assert quote_entry.ts >= quote_entry.arrival_ns + FLOOR
        assert [(r.order_id, r.exec_type) for r in slow.executions] == [
            (quote.bid_order_id, cpb.EXEC_NEW), (quote.ask_order_id, cpb.EXEC_NEW)]

    attempts(venue, FairnessConfig(preset=Preset.PARTICIPANT_CLASS, latency_floor_ns=FLOOR), scenario)


def test_grpc_a_held_order_past_its_deadline_is_still_entered_and_later_held_orders_are_answered(venue):
    """The call ends with DEADLINE_EXCEEDED while its order waits behind the floor; the order is
    still sequenced at its release (the gateway accepted it), and the scheduler lives on. Before,
    the call's cancellation reached the scheduler's future and killed its thread at the release."""
    def scenario(v: Venue) -> None:
        inst = v.client("inst-1")
        with pytest.raises(grpc.RpcError) as failed:
            inst.submit("AAPL", "buy", 10, P - 500, timeout=FLOOR / 1e9 / 4)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        later = inst.submit("AAPL", "buy", 10, P - 600, timeout=10)
        assert later.accepted and v.hub.scheduler._thread.is_alive()
        assert sorted(o.price for o in inst.open_orders()) == [P - 600, P - 500]

    attempts(venue, FairnessConfig(preset=Preset.PARTICIPANT_CLASS, latency_floor_ns=FLOOR), scenario)


def test_grpc_order_attributes_an_exempt_scalper_order_goes_first(venue):
    fairness = FairnessConfig(preset=Preset.ORDER_ATTRIBUTES, latency_floor_ns=FLOOR)
    exempt = fairness.post_only_exempt_min_quantity

    def scenario(v: Venue) -> None:
        held = in_thread(v.client("inst-1").submit, "AAPL", "buy", 10, P)
        v.wait_held(1, [held])
        time.sleep(OFFSET_S)
        fast = v.client("scalper-1").submit("AAPL", "buy", exempt, P, post_only=True)
        slow = held.result(timeout=10)
        assert fast.accepted and slow.accepted
        inst_arrival, inst_release = v.times(slow)
        scalper_arrival, scalper_release = v.times(fast)
        assert inst_arrival < scalper_arrival
        setup_held(scalper_arrival < inst_arrival + FLOOR, "the scalper's order came after the floor had passed")
        assert fast.sequence < slow.sequence
        assert inst_release >= inst_arrival + FLOOR and scalper_release - scalper_arrival < FLOOR
        assert v.client("mm-1").snapshot("AAPL").bids[0].quantity == exempt + 10

    attempts(venue, fairness, scenario)


@pytest.mark.parametrize(("quantity", "post_only"), [(99, True), (100, False)], ids=["small-post-only", "taking-able"])
def test_grpc_order_attributes_a_non_exempt_scalper_order_is_delayed_behind_the_institution(venue, quantity, post_only):
    v = venue(FairnessConfig(preset=Preset.ORDER_ATTRIBUTES, latency_floor_ns=FLOOR))
    held_inst = in_thread(v.client("inst-1").submit, "AAPL", "buy", 10, P)
    v.wait_held(1, [held_inst])
    time.sleep(OFFSET_S)
    held_scalper = in_thread(v.client("scalper-1").submit, "AAPL", "buy", quantity, P, post_only=post_only)
    inst, scalp = held_inst.result(timeout=10), held_scalper.result(timeout=10)
    assert inst.accepted and scalp.accepted and inst.sequence < scalp.sequence
    assert v.times(inst)[0] < v.times(scalp)[0]
    for ack in (inst, scalp):
        arrival, release = v.times(ack)
        assert release >= arrival + FLOOR


# -- MINIMUM RESTING TIME ------------------------------------------------------------------------


def test_grpc_reject_mode_refuses_an_immediate_cancel_and_accepts_it_after_the_minimum(venue):
    def scenario(v: Venue) -> None:
        scalper = v.client("scalper-1")
        order = scalper.submit("AAPL", "sell", 10, P)
        assert order.accepted
        early = scalper.cancel("AAPL", order.order_id)
        if early.accepted:  # only acceptable if it arrived after the minimum
            assert v.times(early)[0] >= order.hub_time_ns + MIN_REST
            raise SetupMissed("the 'immediate' cancel came after the minimum had passed")
        assert early.reject_reason == cpb.REJECT_MIN_RESTING_TIME
        assert "of the required 100000000 ns" in early.reject_text
        wait_until(lambda: time.time_ns() > order.hub_time_ns + MIN_REST + 5_000_000, what="the minimum to pass")
        late = scalper.cancel("AAPL", order.order_id)
        assert late.accepted and late.hub_time_ns - order.hub_time_ns >= MIN_REST
        assert [r.exec_type for r in late.executions] == [cpb.EXEC_CANCELLED]

    attempts(venue, FairnessConfig(min_resting_ns=MIN_REST, min_resting_mode=RestingMode.REJECT), scenario)


def test_grpc_hold_mode_an_immediate_cancel_succeeds_once_the_order_has_rested(venue):
    def scenario(v: Venue) -> None:
        session = v.client("scalper-1").open_session(timeout=10)
        order = session.submit("AAPL", "sell", 10, P)
        started = time.monotonic()
        cancel = session.cancel("AAPL", order.order_id)
        waited = time.monotonic() - started
        assert cancel.accepted and [r.exec_type for r in cancel.executions] == [cpb.EXEC_CANCELLED]
        arrival, release = v.times(cancel)
        setup_held(arrival < order.hub_time_ns + MIN_REST, "the 'immediate' cancel came after the minimum")
        assert release >= order.hub_time_ns + MIN_REST  # applied once the order had rested, not before
        assert waited >= (order.hub_time_ns + MIN_REST - arrival) / 1e9 * 0.99

    attempts(venue, FairnessConfig(min_resting_ns=MIN_REST, min_resting_mode=RestingMode.HOLD), scenario)


@pytest.mark.parametrize("mode", ["unary", "session"])
def test_grpc_hold_mode_a_mass_cancel_waiting_for_young_orders_does_not_stop_other_participants(venue, mode):
    def scenario(v: Venue) -> None:
        scalper = _entry_kind(mode, v.client("scalper-1"))
        mm = v.client("mm-1")
        order = scalper.submit("AAPL", "sell", 10, P)
        assert order.accepted
        pulled = in_thread(scalper.mass_cancel)
        rested = order.hub_time_ns + MIN_REST
        v.wait_held(1, [pulled])  # the mass cancel's cancel of the young order, held until it rests
        sent = time.time_ns()
        other = mm.submit("AAPL", "buy", 5, P - 10 * TICK)
        setup_held(sent < rested - 20_000_000, "the other participant's order was sent after the minimum")
        # Served while the mass cancel waits: the gateway's loop is not blocked behind it.
        assert other.accepted and other.hub_time_ns < rested
        ack = pulled.result(timeout=10)
        assert ack.accepted and ack.cancelled_count == 1 and ack.reject_text == ""
        assert open_order_ids(v, "scalper-1") == []
        assert [o.order_id for o in mm.open_orders()] == [other.order_id]

    attempts(venue, FairnessConfig(min_resting_ns=MIN_REST, min_resting_mode=RestingMode.HOLD), scenario)


def open_order_ids(v: Venue, participant: str) -> list[int]:
    return [o.order_id for o in v.client(participant).open_orders()]


@pytest.mark.parametrize("mode", list(RestingMode))
def test_grpc_a_too_young_order_is_still_filled(venue, mode):
    def scenario(v: Venue) -> None:
        order = v.client("scalper-1").submit("AAPL", "sell", 10, P)
        take = v.client("mm-1").submit("AAPL", "buy", 10, P)
        assert take.accepted
        setup_held(take.hub_time_ns - order.hub_time_ns < MIN_REST, "the taker came after the minimum")
        assert _fills(take) == [10] and take.executions[-1].exec_type == cpb.EXEC_FILLED

    attempts(venue, FairnessConfig(min_resting_ns=MIN_REST, min_resting_mode=mode), scenario)


# -- RANDOMISED BATCHES --------------------------------------------------------------------------


def _batch_records(hub: Hub) -> list[dict]:
    return [json.loads(e.detail) for e in hub.journal.entries()
            if e.kind == EntryKind.ADMIN and json.loads(e.detail).get("action") == "batch"]


def test_grpc_batches_release_cancels_first_then_the_journaled_permutation(venue):
    traders = ["scalper-1", "scalper-2", "inst-1", "inst-2", "mm-1"]

    def scenario(v: Venue) -> None:
        sessions = {p: v.client(p).open_session(timeout=10) for p in traders}

        # Batch 1: one resting order per trader, over sessions.
        first: list[Future] = []
        for i, p in enumerate(traders):
            first.append(sessions[p].submit_async("EURUSD", "buy", FX_LOT, FX_REF - 10 - i))
            v.wait_held(i + 1, first)
        placed = {p: f.result(timeout=10) for p, f in zip(traders, first, strict=True)}
        assert all(a.accepted for a in placed.values())
        setup_held(len(_batch_records(v.hub)) == 1, "batch 1 was split by a stall")

        # Batch 2: new orders and cancels interleaved, over unary calls (a session handles its requests
        # one at a time, so a held one would hold back the next request of the same session).
        clients = {p: v.client(p) for p in traders}
        plan = [("inst-2", "new"), ("scalper-1", "cancel"), ("mm-1", "new"), ("scalper-2", "new"),
                ("inst-1", "cancel"), ("scalper-1", "new"), ("inst-1", "new"), ("mm-1", "cancel")]
        futures: list[Future] = []
        for i, (p, kind) in enumerate(plan):
            c = clients[p]
            futures.append(in_thread(c.cancel, "EURUSD", placed[p].order_id) if kind == "cancel"
                           else in_thread(c.submit, "EURUSD", "buy", FX_LOT, FX_REF - 100 - i))
            v.wait_held(i + 1, futures)
        acks = [f.result(timeout=10) for f in futures]
        assert all(a.accepted for a in acks), acks
        setup_held(len(_batch_records(v.hub)) == 2, "batch 2 was split by a stall")

        released = sorted(range(len(plan)), key=lambda i: acks[i].sequence)
        record = _batch_records(v.hub)[-1]
        cancels = [i for i, (_, k) in enumerate(plan) if k == "cancel"]
        others = [i for i, (_, k) in enumerate(plan) if k == "new"]
        assert (record["batch"], record["cancels"], record["others"]) == (2, 3, 5)
        assert record["permutation"] == batch_permutation(int(record["seed"]), 5)
        assert released == cancels + [others[j] for j in record["permutation"]]
        arrivals = [v.entry(a.sequence).arrival_ns for a in acks]
        assert arrivals == sorted(arrivals)  # sent one after the other, as planned
        assert WINDOW[0] <= record["window_ns"] <= WINDOW[1]
        assert min(a.hub_time_ns for a in acks) >= arrivals[0] + record["window_ns"]  # none before the window closed
        seqs = sorted(a.sequence for a in acks)
        assert seqs == list(range(seqs[0], seqs[0] + len(plan)))  # contiguous...
        before = v.entry(seqs[0] - 1)  # ...right after their batch record
        assert before.kind == EntryKind.ADMIN and json.loads(before.detail) == record

    attempts(venue, FairnessConfig(batching={AssetClass.FX: WINDOW}), scenario)  # seed drawn by the hub at start
