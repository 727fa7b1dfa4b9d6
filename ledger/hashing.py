"""Batched SHA-256 for the ledger's hot loops: ``ledger._hashing`` (native, OpenSSL) when it was
built, otherwise the same functions on hashlib. Both give the same bytes; tests hold them equal.

``leaves_and_links(payloads, chain, tag)``: each record's RFC 6962 leaf hash and the hash chain.
``node_level(below, skip)``: the parents of ``below[skip:]`` in pairs.
``append_leaves(frontier, size, leaves, floor)``: leaves onto a tree's right frontier (in place),
returning the completed nodes of level >= ``floor``.
"""

from __future__ import annotations

import hashlib

_LEAF, _NODE = hashlib.sha256(b"\x00"), hashlib.sha256(b"\x01")


def py_leaves_and_links(payloads: list[bytes], chain: bytes, chain_tag: bytes) -> tuple[list[bytes], list[bytes]]:
    leaves: list[bytes] = []
    links: list[bytes] = []
    tag = hashlib.sha256(chain_tag)
    for payload in payloads:
        h = _LEAF.copy()
        h.update(payload)
        leaf = h.digest()
        h = tag.copy()
        h.update(chain)
        h.update(leaf)
        chain = h.digest()
        leaves.append(leaf)
        links.append(chain)
    return leaves, links


def py_node_level(below: list[bytes], skip: int) -> list[bytes]:
    out: list[bytes] = []
    it = iter(below[skip:skip + 2 * ((len(below) - skip) // 2)])
    for left, right in zip(it, it, strict=True):
        h = _NODE.copy()
        h.update(left)
        h.update(right)
        out.append(h.digest())
    return out


def py_append_leaves(frontier: list[bytes], size: int, leaves: list[bytes], floor: int) -> list[tuple[int, int, bytes]]:
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        node, s, level = leaf, size, 0
        while s & 1:
            h = _NODE.copy()
            h.update(frontier.pop())
            h.update(node)
            node = h.digest()
            s >>= 1
            level += 1
            if level >= floor:
                nodes.append((level, s, node))
        frontier.append(node)
        size += 1
    return nodes


try:
    from ledger._hashing import append_leaves, leaves_and_links, node_level

    NATIVE = True
except ImportError:  # built without the optional extension (no OpenSSL headers): same results, slower
    leaves_and_links, node_level, append_leaves = py_leaves_and_links, py_node_level, py_append_leaves
    NATIVE = False
