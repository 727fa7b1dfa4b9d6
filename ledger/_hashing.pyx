"""SHA-256 in batches for the ledger's hot loops: the journal's writer and the verifier.

Every ledger record costs a leaf hash, a hash-chain link and, amortised, one tree node. Through
hashlib each is three Python calls on a copied state (about 1.5 us a record here, most of it call
overhead); here a batch of records is hashed in one call into OpenSSL's libcrypto, the library
hashlib itself uses, so the digests are the same bytes (tests check it against ``hashlib``).

Built as an optional extension (``setup.py``); ``ledger.hashing`` falls back to hashlib without it.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy


cdef extern from "openssl/sha.h" nogil:
    ctypedef struct SHA256_CTX:
        pass
    int SHA256_Init(SHA256_CTX* c)
    int SHA256_Update(SHA256_CTX* c, const void* data, size_t n)
    int SHA256_Final(unsigned char* md, SHA256_CTX* c)


cdef unsigned char LEAF_PREFIX = 0
cdef unsigned char NODE_PREFIX = 1


cdef inline bytes _digest(SHA256_CTX* c):
    cdef unsigned char out[32]
    SHA256_Final(out, c)
    return PyBytes_FromStringAndSize(<char*>out, 32)


cdef inline void _node(const char* left, const char* right, unsigned char* out) noexcept:
    cdef SHA256_CTX c
    SHA256_Init(&c)
    SHA256_Update(&c, &NODE_PREFIX, 1)
    SHA256_Update(&c, left, 32)
    SHA256_Update(&c, right, 32)
    SHA256_Final(out, &c)


def leaves_and_links(list payloads, bytes chain, bytes chain_tag):
    """RFC 6962 leaf hash of each payload (SHA-256 of 0x00 || payload) and the hash chain after each
    (SHA-256 of tag || previous link || leaf), continuing from ``chain``: (leaves, links)."""
    cdef Py_ssize_t n = len(payloads)
    cdef list leaves = [None] * n
    cdef list links = [None] * n
    cdef SHA256_CTX c
    cdef unsigned char leaf[32]
    cdef unsigned char link[32]
    cdef Py_ssize_t i
    cdef bytes payload
    if PyBytes_GET_SIZE(chain) != 32:
        raise ValueError("a chain link is 32 bytes")
    memcpy(link, PyBytes_AS_STRING(chain), 32)
    for i in range(n):
        payload = <bytes?>payloads[i]
        SHA256_Init(&c)
        SHA256_Update(&c, &LEAF_PREFIX, 1)
        SHA256_Update(&c, PyBytes_AS_STRING(payload), <size_t>PyBytes_GET_SIZE(payload))
        SHA256_Final(leaf, &c)
        SHA256_Init(&c)
        SHA256_Update(&c, PyBytes_AS_STRING(chain_tag), <size_t>PyBytes_GET_SIZE(chain_tag))
        SHA256_Update(&c, link, 32)
        SHA256_Update(&c, leaf, 32)
        SHA256_Final(link, &c)
        leaves[i] = PyBytes_FromStringAndSize(<char*>leaf, 32)
        links[i] = PyBytes_FromStringAndSize(<char*>link, 32)
    return leaves, links


def node_level(list below, Py_ssize_t skip):
    """The parents of ``below[skip:]`` taken in pairs (an unpaired last one is left out): SHA-256 of
    0x01 || left || right each."""
    cdef Py_ssize_t pairs = (len(below) - skip) // 2
    cdef list out = [None] * max(pairs, 0)
    cdef unsigned char node[32]
    cdef Py_ssize_t j
    cdef bytes left, right
    for j in range(pairs):
        left = <bytes?>below[skip + 2 * j]
        right = <bytes?>below[skip + 2 * j + 1]
        if PyBytes_GET_SIZE(left) != 32 or PyBytes_GET_SIZE(right) != 32:
            raise ValueError("a tree node is 32 bytes")
        _node(PyBytes_AS_STRING(left), PyBytes_AS_STRING(right), node)
        out[j] = PyBytes_FromStringAndSize(<char*>node, 32)
    return out


def append_leaves(list frontier, Py_ssize_t size, list leaves, int floor):
    """Append leaf hashes to an RFC 6962 tree's right frontier (``frontier``: one hash per set bit of
    ``size``, largest subtree first; updated in place), merging equal subtrees. Returns the nodes of
    level >= ``floor`` the appends completed, as (level, index, hash), in completion order."""
    cdef list nodes = []
    cdef unsigned char node[32]
    cdef Py_ssize_t s, level
    cdef bytes leaf, current, left
    for leaf in leaves:
        if PyBytes_GET_SIZE(leaf) != 32:
            raise ValueError("a leaf hash is 32 bytes")
        current = leaf
        s = size
        level = 0
        while s & 1:
            left = <bytes?>frontier.pop()
            if PyBytes_GET_SIZE(left) != 32:
                raise ValueError("a tree node is 32 bytes")
            _node(PyBytes_AS_STRING(left), PyBytes_AS_STRING(current), node)
            current = PyBytes_FromStringAndSize(<char*>node, 32)
            s >>= 1
            level += 1
            if level >= floor:
                nodes.append((level, s, current))
        frontier.append(current)
        size += 1
    return nodes
