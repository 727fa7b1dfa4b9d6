"""Randomised batches (EBS style) on FX: windows, cancels first, the journaled shuffle, replay.

In-process hub on a fake clock with FX batched in windows of 1-3 ms and a fixed seed. Each batch
is driven command by command (arrival times spaced ``STEP`` apart, each call held before the
next starts, so the arrival order is known), then released at exactly its window's end. Checked:
the window length is the one derived from the seed; nothing is released 1 ns early; the batch
record (seed, window, permutation) is journaled right before its commands; cancels come first in
arrival order, the rest in ``batch_permutation(seed, k)`` order; over hundreds of batches the
release order is uncorrelated with arrival order; replaying a durable ledger reproduces it all.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from functools import partial
from statistics import fmean

import pytest

from hub.core import QuoteSpec
from hub.fairness import FairnessConfig, Preset, RestingMode, batch_permutation, derive
from hub.journal import EntryKind, JournalEntry
from hub.recovery import recover
from hub.server import open_ledger_journal
from hub.v1 import common_pb2 as cpb
from ledger.records import RecordType, decode
from matching.types import AssetClass, Cancel, decode_commands
from tests.fairness.support import (
    FX_LOT,
    FX_REF,
    FakeClock,
    InProcessHub,
    P,
    Result,
    TeeJournal,
    command_of,
    config_with,
    detail,
    kind_name,
    not_done_after,
)

SEED = 0x5EED_F00D_2026
WINDOW = (1_000_000, 3_000_000)
FX = AssetClass.FX
STEP = 50_000  # ns between arrivals inside a batch: even 8 commands span < 1 ms, the shortest window
TRADERS = ("scalper-1", "scalper-2", "inst-1", "inst-2", "mm-1")


def fairness(**changes) -> FairnessConfig:
    return FairnessConfig(batching={FX: WINDOW}, batch_seed=SEED, **changes)


def expected_window(number: int, seed: int = SEED, window: tuple[int, int] = WINDOW) -> tuple[int, int]:
    """(batch seed, window length) of batch ``number``, recomputed from the hub seed."""
    batch_seed = derive(seed, int(FX), number)
    lo, hi = window
    return batch_seed, lo + batch_seed % (hi - lo + 1)


@dataclass
class Cmd:
    participant: str
    kind: str  # "new" | "cancel" | "replace"
    order_id: int = 0
    side: int = cpb.BUY
    price: int = 0
    quantity: int = FX_LOT

    def call(self, h: InProcessHub):
        if self.kind == "new":
            return partial(h.submit, stp=cpb.STP_ALLOW), (self.participant, "EURUSD", self.side, self.quantity,
                                                          self.price)
        if self.kind == "cancel":
            return h.cancel, (self.participant, "EURUSD", self.order_id)
        return h.replace, (self.participant, "EURUSD", self.order_id, self.price, FX_LOT)


@dataclass
class Batch:
    number: int
    start: int
    end: int
    commands: list[Cmd]
    results: list[Result]
    record: JournalEntry
    released: list[JournalEntry]  # the journal entries right after the record, in sequence order

    @property
    def info(self) -> dict:
        return detail(self.record)

    def release_order(self) -> list[int]:
        """Arrival indexes of the commands in the order they were sequenced."""
        by_seq = sorted(range(len(self.results)), key=lambda i: self.results[i].seq)
        return by_seq

    def expected_order(self) -> list[int]:
        cancels = [i for i, c in enumerate(self.commands) if c.kind == "cancel"]
        others = [i for i, c in enumerate(self.commands) if c.kind != "cancel"]
        return cancels + [others[j] for j in batch_permutation(int(self.info["seed"]), len(others))]

    def others_positions(self) -> list[int]:
        """For the non-cancels in arrival order, their position among the non-cancels released."""
        others = [i for i, c in enumerate(self.commands) if c.kind != "cancel"]
        released = [i for i in self.release_order() if self.commands[i].kind != "cancel"]
        return [released.index(i) for i in others]


def run_batch(h: InProcessHub, number: int, commands: list[Cmd], check_early: bool = True) -> Batch:
    """Send ``commands`` one by one (STEP apart) into batch ``number``, release it at its window end."""
    start = h.clock.now
    _, length = expected_window(number)
    futures = []
    for i, cmd in enumerate(commands):
        h.clock.now = start + i * STEP
        fn, args = cmd.call(h)
        futures.append(h.start_held(fn, *args))
    if check_early:
        h.release(start + length - 1)
        assert h.hub.scheduler.pending == len(commands) and not any(f.done() for f in futures)
    h.release(start + length)
    results = [f.result(timeout=10) for f in futures]
    entries = h.entries()
    index = next(i for i, e in enumerate(entries)
                 if e.kind == EntryKind.ADMIN and detail(e).get("action") == "batch" and detail(e)["batch"] == number)
    return Batch(number, start, start + length, commands, results, entries[index],
                 entries[index + 1:index + 1 + len(commands)])


class Book:
    """The orders each trader has resting on EURUSD (so a batch can cancel some)."""

    def __init__(self) -> None:
        self.live: dict[str, list[int]] = {p: [] for p in TRADERS}
        self.price = 0

    def new(self, participant: str) -> Cmd:
        self.price += 1
        return Cmd(participant, "new", side=cpb.BUY, price=FX_REF - 1 - self.price % 2000)

    def update(self, h: InProcessHub, batch: Batch) -> None:
        for cmd, r in zip(batch.commands, batch.results, strict=True):
            assert r.reason == 0, (cmd, r)
            if cmd.kind == "new":
                self.live[cmd.participant].append(r.order_id)
        resting = h.resting("EURUSD")  # cancelled and filled orders are gone
        self.live = {p: [o for o in ids if o in resting] for p, ids in self.live.items()}


def random_batch(book: Book, rng: random.Random, k: int, max_cancels: int) -> list[Cmd]:
    commands = [book.new(TRADERS[(i + rng.randrange(len(TRADERS))) % len(TRADERS)]) for i in range(k)]
    candidates = [(p, o) for p, ids in book.live.items() for o in ids]
    for p, order_id in rng.sample(candidates, min(len(candidates), rng.randint(0, max_cancels))):
        commands.insert(rng.randint(0, len(commands)), Cmd(p, "cancel", order_id))
    return commands


# -- ONE BATCH -----------------------------------------------------------------------------------


def test_a_batch_is_released_at_the_seeded_window_end_cancels_first_then_the_journaled_permutation(make_hub):
    h = make_hub(fairness())
    book = Book()
    first = run_batch(h, 1, [book.new(p) for p in TRADERS])
    book.update(h, first)
    h.clock.advance(5_000_000)
    commands = [book.new("inst-1"), Cmd("scalper-1", "cancel", book.live["scalper-1"][0]), book.new("mm-1"),
                book.new("scalper-2"), Cmd("inst-2", "cancel", book.live["inst-2"][0]), book.new("inst-2"),
                book.new("scalper-1")]
    second = run_batch(h, 2, commands)
    info = second.info
    batch_seed, length = expected_window(2)
    assert (int(info["seed"]), info["window_ns"], info["cancels"], info["others"]) == (batch_seed, length, 2, 5)
    assert WINDOW[0] <= length <= WINDOW[1]
    assert info["permutation"] == batch_permutation(batch_seed, 5)
    assert second.release_order() == second.expected_order()
    assert second.release_order()[:2] == [1, 4]  # the two cancels, in arrival order
    assert second.release_order() != list(range(len(commands)))  # this seed does shuffle


def test_a_batchs_commands_follow_its_record_with_the_window_end_as_ts_and_their_own_arrival_times(make_hub):
    h = make_hub(fairness())
    book = Book()
    batch = run_batch(h, 1, [book.new(p) for p in TRADERS])
    assert batch.record.ts == batch.end and batch.record.source == "hub"
    seqs = [e.seq_first for e in batch.released]
    assert seqs == list(range(batch.record.seq_first + 1, batch.record.seq_first + 1 + len(TRADERS)))
    assert sorted(seqs) == sorted(r.seq for r in batch.results)
    for entry in batch.released:
        assert entry.kind == EntryKind.ENGINE and entry.ts == batch.end
    arrivals = {r.seq: batch.start + i * STEP for i, r in enumerate(batch.results)}
    assert {e.seq_first: e.arrival_ns for e in batch.released} == arrivals


def test_a_replace_is_shuffled_with_the_new_orders_not_released_with_the_cancels(make_hub):
    h = make_hub(fairness())
    book = Book()
    first = run_batch(h, 1, [book.new(p) for p in TRADERS])
    book.update(h, first)
    h.clock.advance(5_000_000)
    target = book.live["mm-1"][0]
    commands = [book.new("inst-1"), Cmd("mm-1", "replace", target, price=FX_REF - 3000 + 1000),
                Cmd("scalper-1", "cancel", book.live["scalper-1"][0]), book.new("inst-2")]
    batch = run_batch(h, 2, commands)
    assert batch.info["cancels"] == 1 and batch.info["others"] == 3
    assert batch.release_order() == batch.expected_order()
    assert batch.release_order()[0] == 2
    assert [kind_name(command_of(e)) for e in batch.released][0] == "cancel"


def test_a_command_1ns_before_the_window_end_joins_the_batch_and_one_at_the_end_opens_the_next(make_hub):
    h = make_hub(fairness())
    h.hub.scheduler.close()  # only explicit releases: the arrival at the window end closes batch 1 itself
    start = h.clock.now
    _, length1 = expected_window(1)
    _, length2 = expected_window(2)
    a = h.start_held(h.submit, "inst-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 10)
    h.clock.now = start + length1 - 1
    b = h.start_held(h.submit, "mm-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 11)
    h.clock.now = start + length1
    c = h.start_held(h.submit, "scalper-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 12)
    h.release(start + length1)
    assert {a.result(timeout=10).ts, b.result(timeout=10).ts} == {start + length1}
    assert not_done_after(c)
    h.release(start + length1 + length2 - 1)
    assert not c.done()
    h.release(start + length1 + length2)
    assert c.result(timeout=10).ts == start + length1 + length2
    records = [detail(e) for e in h.entries() if e.kind == EntryKind.ADMIN and detail(e).get("action") == "batch"]
    assert [(r["batch"], r["others"], r["window_ns"]) for r in records] == [(1, 2, length1), (2, 1, length2)]


def test_batched_orders_wait_for_their_window_only_not_also_behind_the_latency_floor(make_hub):
    h = make_hub(fairness())
    batch = run_batch(h, 1, [Cmd("inst-1", "new", price=FX_REF - 5)])
    assert batch.results[0].ts == batch.end


def test_other_asset_classes_are_not_batched_while_an_fx_batch_is_open(make_hub):
    h = make_hub(fairness())
    fx = h.start_held(h.submit, "scalper-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 5)
    h.clock.advance(10_000)
    equity = h.call(h.submit, "scalper-1", "AAPL", cpb.BUY, 10, P)
    assert equity.ts == h.clock.now and not fx.done()
    _, length = expected_window(1)
    h.release(h.clock.now - 10_000 + length)
    assert fx.result(timeout=10).seq > equity.seq


def test_a_mass_quotes_fx_part_joins_the_batch_as_one_command_and_its_other_parts_go_at_once(make_hub):
    """A mass quote's FX quotes wait for the batch window (one element of its shuffle), as an FX order
    would; its quotes on other asset classes are sequenced at once (a market maker waits for no
    floor); the answer comes once every part is sequenced. Before, mass quotes skipped batching."""
    h = make_hub(fairness())
    start = h.clock.now
    quote = h.start_held(h.hub.mass_quote, h.who["mm-1"], [QuoteSpec("EURUSD", FX_REF - 5, FX_LOT, FX_REF + 5, FX_LOT),
                                                           QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
    h.clock.advance(STEP)
    order = h.start_held(h.submit, "scalper-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 7)
    equity = [e for e in h.entries() if e.kind == EntryKind.ENGINE]
    assert len(equity) == 1 and equity[0].ts == start and len(h.resting("AAPL")) == 2  # the AAPL part, at once
    _, length = expected_window(1)
    h.release(start + length - 1)
    assert not quote.done() and not order.done()
    h.release(start + length)
    _, rows, reason, _ = quote.result(timeout=10)
    assert reason == 0 and all(row[1] and row[3] and not row[2] and not row[4] for row in rows)
    fx_entry = h.entry(rows[0][1])
    assert (fx_entry.arrival_ns, fx_entry.ts) == (start, start + length)
    [record] = [detail(e) for e in h.entries() if e.kind == EntryKind.ADMIN and detail(e).get("action") == "batch"]
    assert (record["cancels"], record["others"]) == (0, 2)
    assert order.result(timeout=10).ts == start + length
    assert {rows[0][1], rows[0][3]} <= set(h.resting("EURUSD"))


def test_a_mass_quotes_answer_covers_a_halt_its_batched_part_reports(make_hub):
    """The EURUSD part finds its instrument halted at its release and sequences nothing (no side to
    refuse either); the answer, which reports the halt, still waits for the halt's record, not only
    for the AAPL part sequenced before it."""
    h = make_hub(fairness())
    start = h.clock.now
    held = h.hub.enter_mass_quote(h.who["mm-1"], [QuoteSpec("EURUSD", 0, 0, 0, 0),
                                                  QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
    h.clock.advance(STEP)
    h.hub.set_halted(h.who["operator"], "EURUSD", 0, True)
    halt_ticket = len(h.entries())
    _, length = expected_window(1)
    h.release(start + length)
    _, rows, reason, _, ticket = held.wait()
    halted = cpb.REJECT_INSTRUMENT_HALTED
    assert reason == 0 and rows[0] == ("EURUSD", 0, halted, 0, halted) and rows[1][1] and rows[1][3]
    assert h.entries()[0].seq_first == rows[1][1]  # the AAPL part: on record before the halt
    assert ticket >= halt_ticket == 2


def test_reject_mode_still_refuses_a_cancel_of_a_batched_order_younger_than_the_minimum(make_hub):
    h = make_hub(fairness(min_resting_mode=RestingMode.REJECT))
    batch = run_batch(h, 1, [Cmd("scalper-1", "new", price=FX_REF - 5)])
    order = batch.results[0]
    h.clock.now = order.ts + 49_999
    assert h.call(h.cancel, "scalper-1", "EURUSD", order.order_id).reason == cpb.REJECT_MIN_RESTING_TIME


def test_hold_mode_a_batched_cancel_is_not_applied_before_the_order_has_rested_the_minimum(make_hub):
    """A minimum longer than the batch window: the held cancel may join a batch only once it is allowed."""
    min_rest = 10_000_000  # 10 ms, longer than any 1-3 ms window
    h = make_hub(fairness(min_resting_mode=RestingMode.HOLD, min_resting_ns=min_rest))
    batch = run_batch(h, 1, [Cmd("scalper-1", "new", price=FX_REF - 5)])
    order = batch.results[0]
    h.clock.now = order.ts + 1
    held = h.start_held(h.cancel, "scalper-1", "EURUSD", order.order_id)
    for now in range(order.ts + 1_000_000, order.ts + min_rest, 1_000_000):  # every 1 ms until the minimum
        h.release(now)
        assert h.hub.scheduler.pending == 1, f"cancel applied {now - order.ts} ns after entry, minimum {min_rest}"
    h.release(order.ts + min_rest)  # now it may join a batch: one opens at this time
    _, length = expected_window(2)
    h.release(order.ts + min_rest + length - 1)
    assert h.hub.scheduler.pending == 1  # the batch's window runs from the end of the hold
    h.release(order.ts + min_rest + length)
    cancel = held.result(timeout=10)
    assert cancel.reason == 0 and cancel.ts == order.ts + min_rest + length
    assert type(command_of(h.entry(cancel.seq))) is Cancel


# -- MANY BATCHES: UNCORRELATED WITH ARRIVAL ORDER -------------------------------------------------

N_BATCHES = 320
K = 6


def _chi2_critical(df: int, z: float) -> float:
    """Upper quantile of chi-square (Wilson-Hilferty), for the standard normal quantile z."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


Z = 4.0  # one-sided normal quantile ~ 3e-5: a real bias fails, chance alone essentially never does


def shuffle_statistics(positions: list[list[int]]) -> dict[str, float]:
    """``positions[b][i]``: release position of the i-th arrival of batch b (all batches of size K)."""
    n = len(positions)
    rhos = [1 - 6 * sum((i - p) ** 2 for i, p in enumerate(pos)) / (K * (K * K - 1)) for pos in positions]
    fixed = sum(sum(1 for i, p in enumerate(pos) if i == p) for pos in positions)
    counts = [[0] * K for _ in range(K)]
    for pos in positions:
        for i, p in enumerate(pos):
            counts[i][p] += 1
    expected = n / K
    chi2 = sum((c - expected) ** 2 / expected for row in counts for c in row)
    return {"mean_rho": fmean(rhos), "rho_tolerance": Z / math.sqrt(n * (K - 1)),  # Var(rho) = 1/(K-1)
            "fixed_points": fixed, "fixed_tolerance": Z * math.sqrt(n),  # per batch: mean 1, variance 1
            "chi2": chi2, "chi2_critical": _chi2_critical((K - 1) ** 2, Z)}


def assert_uncorrelated(positions: list[list[int]]) -> None:
    s = shuffle_statistics(positions)
    n = len(positions)
    assert abs(s["mean_rho"]) <= s["rho_tolerance"], s
    assert abs(s["fixed_points"] - n) <= s["fixed_tolerance"], s  # each position a fixed point ~1/K of the time
    assert s["chi2"] <= s["chi2_critical"], s  # every arrival index lands in every position ~n/K times


@pytest.fixture(scope="module")
def many_batches() -> list[Batch]:
    h = InProcessHub(fairness())
    try:
        rng = random.Random(2026)
        book = Book()
        batches = []
        for number in range(1, N_BATCHES + 1):
            batch = run_batch(h, number, random_batch(book, rng, K, max_cancels=2), check_early=number <= 20)
            book.update(h, batch)
            batches.append(batch)
            h.clock.advance(rng.randrange(100_000, 2_000_000))
        return batches
    finally:
        h.close()


def test_every_batch_releases_cancels_first_in_arrival_order_then_the_journaled_permutation(many_batches):
    assert sum(b.info["cancels"] for b in many_batches) > N_BATCHES // 2  # the workload does cancel
    for b in many_batches:
        assert int(b.info["seed"]) == expected_window(b.number)[0]
        assert b.info["permutation"] == batch_permutation(int(b.info["seed"]), K)
        assert b.release_order() == b.expected_order(), b.number
        assert [e.seq_first for e in b.released] == sorted(r.seq for r in b.results)


def test_release_order_within_batches_is_uncorrelated_with_arrival_order(many_batches):
    assert_uncorrelated([b.others_positions() for b in many_batches])


def test_the_uncorrelation_check_would_catch_fifo_or_a_mildly_biased_shuffle():
    """The statistics above have power: arrival order kept, or a shuffle that favours the first arrival."""
    with pytest.raises(AssertionError):
        assert_uncorrelated([list(range(K))] * N_BATCHES)
    rng = random.Random(7)
    biased = []
    for _ in range(N_BATCHES):
        pos = list(range(K))
        rng.shuffle(pos)
        if rng.random() < 0.25:  # a quarter of the time the first arrival is released first
            pos[pos.index(0)], pos[0] = pos[0], 0
        biased.append(pos)
    with pytest.raises(AssertionError):
        assert_uncorrelated(biased)


def test_window_lengths_are_drawn_from_the_seed_and_spread_over_the_configured_range(many_batches):
    lengths = [b.info["window_ns"] for b in many_batches]
    assert lengths == [expected_window(b.number)[1] for b in many_batches]
    assert lengths == [b.end - b.start for b in many_batches]
    lo, hi = WINDOW
    assert all(lo <= n <= hi for n in lengths)
    sd_of_mean = (hi - lo) / math.sqrt(12) / math.sqrt(len(lengths))  # uniform on [lo, hi]
    assert abs(fmean(lengths) - (lo + hi) / 2) <= Z * sd_of_mean
    assert min(lengths) < lo + (hi - lo) // 10 and max(lengths) > hi - (hi - lo) // 10


def test_batch_permutation_is_uniform_over_all_orders_of_a_small_batch():
    counts: dict[tuple[int, ...], int] = {}
    n = 6000
    for s in range(n):
        key = tuple(batch_permutation(derive(SEED, 3, s), 3))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6
    chi2 = sum((c - n / 6) ** 2 / (n / 6) for c in counts.values())
    assert chi2 <= _chi2_critical(5, Z), counts


# -- REPLAY FROM THE DURABLE LEDGER ----------------------------------------------------------------


def _ledger_batches(store) -> list[tuple[dict, list]]:
    """(batch record detail, its commands' records) for every batch in the ledger; a batch's commands
    must follow its record with nothing in between but their own records (events, post-trade)."""
    out: list[tuple[dict, list]] = []
    want = 0
    sequenced_apart = {RecordType.ADMIN, RecordType.GATEWAY_REJECT, RecordType.CONFIG}  # records of their own
    for _idx, _seq, payload, _leaf, _chain in store.iter_records():
        rec = decode(payload)
        if want:
            assert rec.record_type not in sequenced_apart, f"batch {out[-1][0]['batch']} interrupted by {rec}"
            if rec.record_type == RecordType.COMMAND:
                out[-1][1].append(rec)
                want -= 1
        elif rec.record_type == RecordType.ADMIN and rec.detail_json().get("action") == "batch":
            out.append((rec.detail_json(), []))
            want = out[-1][0]["cancels"] + out[-1][0]["others"]
    assert want == 0, "the ledger ends inside a batch"
    return out


def test_replaying_the_ledger_reproduces_the_batched_sequence_and_the_journaled_shuffles(tmp_path):
    config = config_with(fairness(), data_dir=str(tmp_path / "data"))
    journal = open_ledger_journal(config)
    h = InProcessHub(config.fairness, journal=TeeJournal(journal), config=config)
    rng = random.Random(11)
    try:
        h.hub.accepting = False
        recover(h.hub, journal)
        book = Book()
        for number in range(1, 41):
            batch = random_batch(book, rng, rng.randint(2, 7), max_cancels=3)
            # Sells across the book: who fills first depends on the shuffle.
            batch.insert(rng.randint(0, len(batch)), Cmd("mm-1", "new", side=cpb.SELL, price=FX_REF - 2000,
                                                             quantity=2 * FX_LOT))
            book.update(h, run_batch(h, number, batch, check_early=False))
            h.clock.advance(rng.randrange(100_000, 2_000_000))
        digest, last_seq = h.hub.state_digest(), h.hub.last_sequence
        resting = {oid: o.remaining for oid, o in h.resting("EURUSD").items()}
        assert h.hub.positions(h.who["mm-1"])  # the sells did trade
    finally:
        h.close()
        journal.checkpoint(h.hub.state_digest_bytes(), h.clock())
        journal.close()

    # Restart with another seed: replay follows the ledger, never re-draws a shuffle.
    config2 = replace(config, fairness=replace(config.fairness, batch_seed=SEED + 1))
    journal2 = open_ledger_journal(config2)
    h2 = InProcessHub(config2.fairness, journal=journal2, config=config2, clock=FakeClock(h.clock.now + 10**9))
    try:
        h2.hub.accepting = False
        report = recover(h2.hub, journal2)
        assert report.checkpoint_verified
        assert h2.hub.state_digest() == digest
        assert h2.hub.last_sequence >= last_seq
        assert {oid: o.remaining for oid, o in h2.resting("EURUSD").items()} == resting

        batches = _ledger_batches(journal2)
        assert len(batches) == 40
        for info, records in batches:
            assert len(records) == info["cancels"] + info["others"]
            seed = int(info["seed"])
            assert seed == expected_window(info["batch"])[0]
            assert info["window_ns"] == expected_window(info["batch"])[1]
            assert info["permutation"] == batch_permutation(seed, info["others"])
            kinds = [type(decode_commands(r.engine_record)[0]) is Cancel for r in records]
            assert kinds == [True] * info["cancels"] + [False] * info["others"]  # cancels first
            cancels, others = records[:info["cancels"]], records[info["cancels"]:]
            assert [r.arrival_ns for r in cancels] == sorted(r.arrival_ns for r in cancels)
            by_arrival = sorted(others, key=lambda r: r.arrival_ns)
            assert [r.seq for r in others] == [by_arrival[j].seq for j in info["permutation"]]
            assert len({r.hub_time_ns for r in records}) == 1
        # Against the ledger, the same hub keeps going: the next batch is journaled after the replayed ones.
        nxt = h2.start_held(h2.submit, "inst-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 7)
        h2.release(h2.clock.now + WINDOW[1])
        assert nxt.result(timeout=10).seq > last_seq
    finally:
        h2.close()
        journal2.close()


def test_participant_class_batches_apply_to_every_participant_class(make_hub):
    h = make_hub(fairness(preset=Preset.PARTICIPANT_CLASS))
    batch = run_batch(h, 1, [Cmd(p, "new", price=FX_REF - 20 - i) for i, p in enumerate(TRADERS)])
    assert {r.ts for r in batch.results} == {batch.end}


def test_a_batched_order_is_refused_if_its_instrument_was_halted_before_the_batch_was_released(make_hub):
    h = make_hub(fairness())
    start = h.clock.now
    _, length = expected_window(1)
    held = h.start_held(h.submit, "inst-1", "EURUSD", cpb.BUY, FX_LOT, FX_REF - 5)
    h.clock.now = start + 10_000
    h.hub.set_halted(h.who["operator"], "EURUSD", 0, True)
    h.release(start + length)
    assert held.result(timeout=10).reason == cpb.REJECT_INSTRUMENT_HALTED
    assert h.resting("EURUSD") == {}


def test_a_mass_quote_refused_for_its_immediate_part_leaves_nothing_queued_to_enter_later():
    """The ledger is down: the message's AAPL part is refused (UNAVAILABLE), and its EURUSD part,
    which would wait for the batch, is not queued either. Before, the batched part was queued first
    and entered at the window's end, after the caller had been told the call failed."""
    from hub.auth import Identity
    from hub.core import Hub, HubUnavailableError
    from tests.fairness.support import FakeClock, SwitchableJournal

    clock, journal = FakeClock(), SwitchableJournal()
    cfg = config_with(fairness())
    hub = Hub(cfg, journal, clock=clock)
    try:
        mm = Identity.of(next(p for p in cfg.participants if p.id == "mm-1"))
        journal.up = False
        with pytest.raises(HubUnavailableError):
            hub.enter_mass_quote(mm, [QuoteSpec("EURUSD", FX_REF - 5, FX_LOT, FX_REF + 5, FX_LOT),
                                      QuoteSpec("AAPL", P - 100, 5, P + 100, 5)], 0)
        journal.up = True
        assert hub.scheduler.pending == 0
        clock.now += WINDOW[1] + 1
        hub.scheduler.release_due()
        assert hub.open_orders(mm)[0] == [] and hub.last_sequence == 0
    finally:
        hub.scheduler.close()


def test_orders_of_a_batch_whose_record_the_ledger_refuses_are_answered_unavailable_and_the_scheduler_lives():
    """The batch's audit record is journaled when its window ends, before its orders run. A ledger
    that refuses it then must not leave their callers waiting forever, nor kill the scheduler's
    thread (later held orders would only run when some other command happened by). Their client
    order ids are free again: no record names them, so a restart's replay would not burn them."""
    from hub.auth import Identity
    from hub.core import Hub, HubUnavailableError, OrderSpec
    from hub.fairness import FairnessConfig, Preset
    from matching.types import AssetClass
    from tests.fairness.support import FX_LOT, FX_REF, FakeClock, SwitchableJournal, config_with, wait_until

    clock, journal = FakeClock(), SwitchableJournal()
    cfg = config_with(FairnessConfig(preset=Preset.OFF, batching={AssetClass.FX: (1_000_000, 1_000_000)},
                                     batch_seed=7))
    hub = Hub(cfg, journal, clock=clock)
    try:
        who = Identity.of(next(p for p in cfg.participants if p.id == "inst-1"))
        spec = OrderSpec("EURUSD", cpb.BUY, cpb.LIMIT, cpb.GTC, FX_REF - 10, FX_LOT)
        ids = [f"batched-{i}" for i in range(3)]
        held = [hub.enter_order(who, spec._replace(client_order_id=i)) for i in ids]
        journal.up = False  # the ledger fails just as the window ends
        clock.now += 2_000_000
        hub.scheduler.hold(clock.now + 10**12, lambda ns: None)  # wakes the scheduler's thread
        for call in held:
            with pytest.raises(HubUnavailableError):
                call.future.result(timeout=5)
        assert hub.scheduler._thread.is_alive()
        wait_until(lambda: not hub._client_ids[who.participant_id] & set(ids), what="the ids given back")
        journal.up = True
        later = hub.enter_order(who, spec._replace(client_order_id=ids[0]))  # the same thread; the id is free
        clock.now += 2_000_000
        hub.scheduler.hold(clock.now + 10**12, lambda ns: None)
        outcome, reason, _ = later.future.result(timeout=5)
        assert outcome is not None and reason == 0
    finally:
        hub.scheduler.close()
