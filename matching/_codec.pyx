# cython: language_level=3
"""Native decoding of command and event records into their NamedTuples.

``matching.types._decode`` is the reference and the fallback: this does exactly what it does (one
NamedTuple per 16-slot little-endian int64 record, the record's first ``width`` fields after the
kind) without the intermediate 16-int tuple and its slice. Every routed command decodes its events,
and a mass quote decodes thousands, so this sits on the hub's hot path.

The NamedTuple instances are allocated the way CPython's own ``tuple.__new__(cls, iterable)`` does
for a tuple subclass: ``cls.tp_alloc(cls, width)``, then each item set.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

cdef extern from "Python.h":
    void PyTuple_SET_ITEM(object p, Py_ssize_t pos, object o)  # steals a reference to o
    void Py_INCREF(object o)

cdef extern from *:
    """
    #include <stdint.h>
    static inline int64_t hub_load_le64(const unsigned char *p) {
        /* byte by byte: alignment- and endianness-independent; one load on little-endian targets */
        uint64_t v = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24)
                   | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
        return (int64_t)v;
    }
    /* A new, empty instance of the tuple subclass cls with n items (NULL and an exception on failure). */
    static inline PyObject *hub_alloc_tuple(PyObject *cls, Py_ssize_t n) {
        return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
    }
    """
    int64_t hub_load_le64(const unsigned char *p) nogil
    object hub_alloc_tuple(PyObject *cls, Py_ssize_t n)

DEF SLOTS = 16
DEF RECORD = SLOTS * 8
DEF MAX_KIND = 64


def decode_records(bytes buf, tuple layout, object error, str what):
    """Records of ``buf`` as NamedTuples. ``layout[kind]`` is ``(cls, width)`` or None for a kind
    that does not exist; ``error`` is raised (with the reference decoder's message) for a buffer
    that is not whole records or a record of an unknown kind."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(buf)
    if size % RECORD:
        raise error(f"{what} buffer of {size} bytes is not a whole number of records")
    cdef Py_ssize_t kinds = len(layout)
    if kinds > MAX_KIND:
        raise ValueError("layout has too many kinds")
    cdef PyObject* classes[MAX_KIND]
    cdef Py_ssize_t widths[MAX_KIND]
    cdef Py_ssize_t k
    for k in range(kinds):
        entry = layout[k]
        if entry is None:
            classes[k] = NULL
            widths[k] = 0
        else:
            cls, fields = entry
            if not isinstance(cls, type) or not issubclass(cls, tuple) or not 0 < fields < SLOTS:
                raise ValueError(f"bad layout entry for kind {k}")
            classes[k] = <PyObject*>cls  # borrowed: layout keeps it alive for the call
            widths[k] = fields
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t count = size // RECORD
    cdef list out = []
    cdef Py_ssize_t r, i, width
    cdef int64_t kind
    for r in range(count):
        kind = hub_load_le64(p)
        if kind < 0 or kind >= kinds or classes[kind] == NULL:
            raise error(f"unknown {what} kind {kind} at record {r}")
        width = widths[kind]
        record = hub_alloc_tuple(classes[kind], width)
        for i in range(width):
            value = PyLong_FromLongLong(hub_load_le64(p + 8 * (i + 1)))
            Py_INCREF(value)  # PyTuple_SET_ITEM steals one
            PyTuple_SET_ITEM(record, i, value)
        PyList_Append(out, record)
        p += RECORD
    return out

