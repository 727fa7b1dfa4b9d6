"""The Cython engine against the reference oracle on random command streams.

Per command: identical encoded events and identical digests and counters; after every command
(both engines): book invariants, market-data consistency and quantity conservation
(see ``tests.property.harness``).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from matching.types import EVENT_KIND, AssetClass, decode_events, encode_command, encode_commands, encode_events
from tests.property.harness import (
    GENE_MAX,
    GENE_WIDTH,
    ODD_EQUITIES,
    decode_stream,
    random_genes,
    run_differential,
)
from tests.support import AAPL, BUY, IOC, SELL, TICK, Commands, P, build_engine

gene = st.tuples(*[st.integers(0, GENE_MAX)] * GENE_WIDTH)


@st.composite
def gene_lists(draw, max_commands: int = 300) -> list:
    """Streams of 0..max_commands genes, uniformly long (``st.lists`` alone averages ~5 elements)."""
    n = draw(st.integers(0, max_commands))
    return draw(st.lists(gene, min_size=n, max_size=n))


#: (asset class, instruments): each default asset class, and equities with odd lots, ticks and caps
UNIVERSES = [(ac, None) for ac in AssetClass] + [(AssetClass.EQUITY, ODD_EQUITIES)]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(universe=st.sampled_from(UNIVERSES), genes=gene_lists())
def test_engines_agree_on_every_event_and_digest_for_random_streams(universe, genes):
    asset_class, instruments = universe
    commands = run_differential(asset_class, genes=genes, instruments=instruments)
    note(f"{len(commands)} commands")


SEEDS = range(50)
SEEDED_LENGTH = 2_000


@pytest.mark.parametrize("seed", SEEDS)
def test_engines_agree_on_long_seeded_streams(seed):
    """Long streams reach states short examples do not (deep queues, many refills, id gaps).
    Events and digests are compared after every command; invariants every 10th."""
    asset_class, instruments = UNIVERSES[seed % len(UNIVERSES)]
    run_differential(asset_class, genes=random_genes(random.Random(seed), SEEDED_LENGTH),
                     instruments=instruments, invariant_every=10)


@pytest.mark.parametrize("asset_class", list(AssetClass), ids=lambda ac: ac.name)
def test_one_packed_batch_equals_command_by_command_processing(engine_impl, asset_class):
    commands = decode_stream(asset_class, random_genes(random.Random(1000 + asset_class), 1_500))
    oracle = build_engine("reference", asset_class)
    expected = b"".join(encode_events(oracle.process(c)) for c in commands)
    assert {type(e) for e in decode_events(expected)} == set(EVENT_KIND), "the stream exercises every event"

    one_by_one = build_engine(engine_impl, asset_class)
    assert b"".join(one_by_one.process_packed(encode_command(c)) for c in commands) == expected

    batched = build_engine(engine_impl, asset_class)
    assert batched.process_packed(encode_commands(commands)) == expected

    rng = random.Random(asset_class)
    chunked = build_engine(engine_impl, asset_class)
    out, i = [], 0
    while i < len(commands):
        n = rng.randint(1, 200)
        out.append(chunked.process_packed(encode_commands(commands[i:i + n])))
        i += n
    assert b"".join(out) == expected

    typed = build_engine(engine_impl, asset_class)
    assert encode_events([e for c in commands for e in typed.process(c)]) == expected

    for engine in (one_by_one, batched, chunked, typed):
        assert engine.digest() == oracle.digest()
        assert (engine.last_order_id, engine.last_trade_id, engine.last_seq) == (
            oracle.last_order_id, oracle.last_trade_id, oracle.last_seq)


def test_engines_agree_on_a_book_larger_than_the_preallocated_order_pool():
    """The compiled engine reserves 65_536 order slots; past that its pool reallocates and
    freed slots are reused. 66_000 resting orders, then sweeps, cancels and refills."""
    rng = random.Random(7)
    cmds = Commands(AAPL)
    stream = []
    for i in range(66_000):
        qty = rng.randint(1, 20)
        display = rng.randint(1, qty - 1) if qty > 2 and i % 5 == 0 else 0
        stream.append(cmds.new(SELL, P + rng.randrange(50) * TICK, qty, account=1 + i % 3, display=display))
    for i in range(2_000):
        r = rng.random()
        if r < 0.4:
            stream.append(cmds.new(BUY, P + rng.randrange(50) * TICK, rng.randint(50, 900), account=1 + i % 3,
                                   tif=IOC, stp=i % 4))
        elif r < 0.7:
            stream.append(cmds.cancel(rng.randint(1, 66_000), account=1 + rng.randrange(3)))
        else:
            stream.append(cmds.new(SELL, P + rng.randrange(50) * TICK, rng.randint(1, 20), account=1 + i % 3))
    stream += [cmds.mass_cancel(2), cmds.market(BUY, 100_000, account=3), cmds.end_of_session()]
    ref, cy = build_engine("reference"), build_engine("cython")
    expected = encode_events([e for c in stream for e in ref.process(c)])
    assert cy.process_packed(encode_commands(stream)) == expected
    assert cy.digest() == ref.digest()
    assert ref.last_trade_id > 30_000 and len(ref.orders(AAPL)) > 10_000
