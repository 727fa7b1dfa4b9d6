"""The ack log: an append-only file in front of a SQLite ledger, where an ack becomes durable.

A SQLite commit on the ack path cost about 85-110 us here (one multi-row INSERT in WAL mode,
cache-cold after the order's sequencing), and one that carried tree nodes twice that; appending
the same hashed rows to a file is one ``write`` (plus ``fdatasync`` for durability ``power``).
Both survive what the configured durability promises: with ``process`` the bytes are in the
kernel once ``write`` returns, as SQLite's own WAL frames are with ``synchronous=NORMAL``; with
``power`` both are synced. The ledger writes each batch here, acknowledges, and inserts the
batches into the database a moment later in one transaction off the ack path
(``LedgerJournal``); at start any batch the database lacks is inserted before anything reads it.

Each frame is ``magic, length, crc32`` and a batch: the tree size it starts at, then its rows
(exactly the ``ledger_record`` columns, hashes included), tree nodes and signed checkpoints. A
torn or corrupt tail (a crash in the middle of a write, which was never acknowledged) ends the
log and is cut off. The file holds nothing a verifier trusts: the database rows it becomes are
verified like any other (leaf, chain, nodes, signatures).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

_MAGIC = b"HLA1"
_FRAME = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
_BATCH = struct.Struct("<qIII")  # start tree size, rows, nodes, checkpoints
_ROW = struct.Struct("<qqiqI")  # idx, seq, record type, hub time, payload length (+ payload, leaf, link)
_NODE = struct.Struct("<iq")  # level, node index (+ hash)
_CHECKPOINT = struct.Struct("<qqqIII")  # tree size, hub time, last seq, root, digest and note lengths
_HASH = 32

Row = tuple[int, int, int, int, bytes, bytes, bytes]
Node = tuple[int, int, bytes]
CheckpointRow = tuple[int, bytes, bytes, int, int, str]


class AckLogError(RuntimeError):
    """The ack log and the database disagree: something other than the hub changed one of them."""


def encode_batch(start: int, rows: list[Row], nodes: list[Node], checkpoints: list[CheckpointRow]) -> bytes:
    pack_row, pack_node = _ROW.pack, _NODE.pack
    parts = [_BATCH.pack(start, len(rows), len(nodes), len(checkpoints))]
    add = parts.append
    for idx, seq, rtype, ts, payload, leaf, link in rows:
        add(pack_row(idx, seq, rtype, ts, len(payload)))
        add(payload)
        add(leaf)
        add(link)
    for level, index, digest in nodes:
        add(pack_node(level, index))
        add(digest)
    for size, root, digest, ts, last_seq, note in checkpoints:
        text = note.encode()
        add(_CHECKPOINT.pack(size, ts, last_seq, len(root), len(digest), len(text)))
        add(root)
        add(digest)
        add(text)
    return b"".join(parts)


def decode_batch(blob: bytes) -> tuple[int, list[Row], list[Node], list[CheckpointRow]]:
    start, n_rows, n_nodes, n_checkpoints = _BATCH.unpack_from(blob, 0)
    pos = _BATCH.size
    rows: list[Row] = []
    for _ in range(n_rows):
        idx, seq, rtype, ts, length = _ROW.unpack_from(blob, pos)
        pos += _ROW.size
        payload = blob[pos:pos + length]
        pos += length
        rows.append((idx, seq, rtype, ts, payload, blob[pos:pos + _HASH], blob[pos + _HASH:pos + 2 * _HASH]))
        pos += 2 * _HASH
    nodes: list[Node] = []
    for _ in range(n_nodes):
        level, index = _NODE.unpack_from(blob, pos)
        pos += _NODE.size
        nodes.append((level, index, blob[pos:pos + _HASH]))
        pos += _HASH
    checkpoints: list[CheckpointRow] = []
    for _ in range(n_checkpoints):
        size, ts, last_seq, n_root, n_digest, n_note = _CHECKPOINT.unpack_from(blob, pos)
        pos += _CHECKPOINT.size
        root, digest = blob[pos:pos + n_root], blob[pos + n_root:pos + n_root + n_digest]
        pos += n_root + n_digest
        checkpoints.append((size, root, digest, ts, last_seq, blob[pos:pos + n_note].decode()))
        pos += n_note
    if pos != len(blob):
        raise AckLogError(f"ack log batch at tree size {start} has {len(blob) - pos} trailing bytes")
    return start, rows, nodes, checkpoints


def parse_frames(data: bytes) -> tuple[list[bytes], int]:
    """The batches of the whole, intact frames at the start of ``data``, and where they end."""
    batches, pos = [], 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        body = data[pos + _FRAME.size:pos + _FRAME.size + length]
        if magic != _MAGIC or len(body) != length or zlib.crc32(body) != crc:
            break
        batches.append(body)
        pos += _FRAME.size + length
    return batches, pos


def pending_records(path: str | Path, database_size: int) -> int:
    """Records an ack log holds beyond a database of ``database_size`` records (read only): what the
    hub inserts at its next start."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0
    end = database_size
    for blob in parse_frames(data)[0]:
        start, rows, _, _ = decode_batch(blob)
        end = max(end, start + len(rows))
    return end - database_size


class AckLog:
    """One append-only file of framed batches. Appends come from one writer at a time (the ledger's
    write lock); ``reset`` empties the file once the database holds every batch in it."""

    def __init__(self, path: str | Path, sync: bool) -> None:
        self.path = Path(path)
        self._sync = sync
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        if sync and not existed:  # the file's directory entry must survive power loss too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.size = os.fstat(self._fd).st_size

    def append(self, batch: bytes) -> None:
        """Write one frame; it is durable (to the configured degree) when this returns. A failure
        (disk full) raises OSError and the frame may be torn: ``read`` cuts a torn tail off."""
        frame = _FRAME.pack(_MAGIC, len(batch), zlib.crc32(batch)) + batch
        view = memoryview(frame)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._sync:
                os.fdatasync(self._fd)
        except OSError:
            # Cut the torn frame off, or the retried batch would follow it and be unreadable.
            os.ftruncate(self._fd, self.size)
            raise
        self.size += len(frame)

    def read(self) -> list[bytes]:
        """The batches of every whole, intact frame, in order; a torn or corrupt tail is cut off."""
        data = os.pread(self._fd, os.fstat(self._fd).st_size, 0)
        batches, pos = parse_frames(data)
        if pos != len(data):
            os.ftruncate(self._fd, pos)
        self.size = pos
        return batches

    def reset(self) -> None:
        """Empty the file: the database now holds every batch written to it."""
        os.ftruncate(self._fd, 0)
        if self._sync:
            os.fdatasync(self._fd)
        self.size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
