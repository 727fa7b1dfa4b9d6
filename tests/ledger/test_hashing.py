"""ledger.hashing: the native batched SHA-256 (ledger._hashing) gives exactly the bytes of the
hashlib versions, which are themselves the RFC 6962 leaf / node rules and the ledger's chain rule."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import hashing
from ledger.merkle import CompactRange
from ledger.store import CHAIN_TAG, chain_link

native = pytest.mark.skipif(not hashing.NATIVE, reason="ledger._hashing was not built (no OpenSSL headers)")
payloads = st.lists(st.binary(max_size=600), max_size=40)
digests = st.binary(min_size=32, max_size=32)


@given(payloads, digests)
def test_leaves_and_links_follow_the_leaf_and_chain_rules(items: list[bytes], chain: bytes) -> None:
    leaves, links = hashing.py_leaves_and_links(items, chain, CHAIN_TAG)
    assert leaves == [hashlib.sha256(b"\x00" + p).digest() for p in items]
    expected, link = [], chain
    for leaf in leaves:
        link = chain_link(link, leaf)
        expected.append(link)
    assert links == expected


@native
@given(payloads, digests)
def test_native_leaves_and_links_equal_hashlib(items: list[bytes], chain: bytes) -> None:
    assert hashing.leaves_and_links(items, chain, CHAIN_TAG) == hashing.py_leaves_and_links(items, chain, CHAIN_TAG)


@given(st.lists(digests, max_size=33), st.integers(0, 1))
def test_node_level_pairs_the_nodes_below(below: list[bytes], skip: int) -> None:
    expected = [hashlib.sha256(b"\x01" + below[i] + below[i + 1]).digest()
                for i in range(skip, len(below) - 1, 2)]
    assert hashing.py_node_level(below, skip) == expected
    if hashing.NATIVE:
        assert hashing.node_level(below, skip) == expected


@given(st.integers(0, 300), st.lists(digests, max_size=70), st.integers(1, 5))
def test_append_leaves_matches_the_compact_range(start: int, leaves: list[bytes], floor: int) -> None:
    base = CompactRange()
    for i in range(start):
        base.append(hashlib.sha256(i.to_bytes(4, "little")).digest())
    reference = CompactRange()
    for i in range(start):
        reference.append(hashlib.sha256(i.to_bytes(4, "little")).digest())
    completed = [node for leaf in leaves for node in reference.append(leaf) if node[0] >= floor]
    for append in ([hashing.py_append_leaves, hashing.append_leaves] if hashing.NATIVE else [hashing.py_append_leaves]):
        frontier = base.frontier()
        assert append(frontier, start, list(leaves), floor) == completed
        assert frontier == reference.frontier()


@native
def test_native_hashing_refuses_malformed_input() -> None:
    with pytest.raises(ValueError):
        hashing.leaves_and_links([b"x"], b"short", CHAIN_TAG)
    with pytest.raises(TypeError):
        hashing.leaves_and_links(["not bytes"], bytes(32), CHAIN_TAG)
    with pytest.raises(ValueError):
        hashing.node_level([bytes(31), bytes(32)], 0)
    with pytest.raises(ValueError):
        hashing.append_leaves([], 0, [bytes(31)], 1)
