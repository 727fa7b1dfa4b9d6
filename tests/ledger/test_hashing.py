"""ledger.hashing: the native batched SHA-256 (ledger._hashing) gives exactly the bytes of the
hashlib versions, which are themselves the RFC 6962 leaf / node rules and the ledger's chain rule."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import hashing
from ledger.merkle import root_of
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
def test_append_leaves_completes_the_perfect_subtrees_and_keeps_the_frontier(start: int, new: list[bytes],
                                                                                floor: int) -> None:
    """Against root_of (the RFC's MTH, computed level by level on its own): after appending, the
    frontier is the roots of the perfect subtrees of the size's set bits, and the nodes completed
    are exactly the perfect subtrees that end at an appended leaf, of level >= floor."""
    leaves = [hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(start)] + new

    def frontier(size: int) -> list[bytes]:
        out, pos = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append(root_of(leaves[pos:pos + (1 << level)]))
                pos += 1 << level
        return out

    completed = []
    for i in range(start, start + len(new)):
        level, index = 0, i
        while index & 1:
            level, index = level + 1, index >> 1
            if level >= floor:
                completed.append((level, index, root_of(leaves[index << level:(index + 1) << level])))
    for append in ([hashing.py_append_leaves, hashing.append_leaves] if hashing.NATIVE else [hashing.py_append_leaves]):
        tree = frontier(start)
        assert append(tree, start, list(new), floor) == completed
        assert tree == frontier(start + len(new))


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
