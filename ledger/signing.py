"""Signed ledger checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes.

A checkpoint commits to the ledger's Merkle tree at one size, plus the replayed state digest and the hub
time. The body is::

    <origin>\\n<tree size>\\n<base64 root>\\nstate <hex state digest>\\ntime <hub time ns>\\n

and the note adds a blank line and one signature line per key, in the format of
``golang.org/x/mod/sumdb/note`` (c2sp.org/signed-note)::

    — <key name> <base64(key id (4 bytes) || signature)>\\n

Ed25519 (signature type 0x01) is always used, so Go's ``sumdb/note``, Tessera clients and witnesses can check
the notes. An optional ML-DSA-65 (FIPS 204) line can be added for post-quantum assurance. c2sp.org/signed-note
assigns no type byte to ML-DSA, so that line uses the spec's escape ``0xff`` followed by the identifier
:data:`MLDSA65_TYPE` (see there). Verifiers that know only the Ed25519 key ignore it, as the spec requires
for unknown keys.

Verification is strict: a note that is malformed, lacks a signature from the pinned key, or carries a bad
signature from it raises :class:`SignatureError`, and the body is parsed only after its signature verified.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

try:  # only newer cryptography releases ship ML-DSA; only the optional PQ line uses it
    from cryptography.hazmat.primitives.asymmetric import mldsa
except ImportError:  # pragma: no cover - depends on the installed cryptography
    mldsa = None  # type: ignore[assignment]

__all__ = [
    "ED25519_KEY_FILE",
    "ED25519_PUB_FILE",
    "ED25519_TYPE",
    "MLDSA65_KEY_FILE",
    "MLDSA65_PUB_FILE",
    "MLDSA65_TYPE",
    "AllKeys",
    "Checkpoint",
    "CheckpointFormatError",
    "KeyFileError",
    "MLDSASigner",
    "MLDSAVerifier",
    "SignatureError",
    "SignatureErrorReason",
    "SignedCheckpoint",
    "Signer",
    "Verifier",
    "key_id",
    "load_or_create_signer",
    "load_verifier",
    "mldsa_available",
    "open_note",
    "parse_verifier_key",
    "verify_checkpoint",
]

ED25519_TYPE = b"\x01"
"""c2sp.org/signed-note signature type of Ed25519 note signatures."""

_MLDSA65_IDENTIFIER = b"fips204/ml-dsa-65/pure"
MLDSA65_TYPE = b"\xff" + bytes([len(_MLDSA65_IDENTIFIER)]) + _MLDSA65_IDENTIFIER
"""Signature type of our optional ML-DSA-65 lines. c2sp.org/signed-note assigns no type byte to ML-DSA-65
(``0x06`` is taken by the ML-DSA-44 *witness cosignature* of c2sp.org/tlog-cosignature, which signs a different
message), and reserves ``0xff`` for unassigned types, recommending a longer identifier after it. We write
``0xff || length byte || "fips204/ml-dsa-65/pure"`` (length-prefixed, so a generic parser can find where the
public key starts). The signature is pure ML-DSA-65 (FIPS 204, empty context string) over the note text,
the same bytes the Ed25519 line signs. The type enters the key ID hash and prefixes the public key in the
verifier key string."""

ED25519_KEY_FILE = "ledger_ed25519.key"
ED25519_PUB_FILE = "ledger_ed25519.pub"
MLDSA65_KEY_FILE = "ledger_mldsa65.key"
MLDSA65_PUB_FILE = "ledger_mldsa65.pub"

HASH_SIZE = 32
STATE_DIGEST_SIZE = 32
_MAX_TREE_SIZE = (1 << 64) - 1
_MAX_TIME_NS = (1 << 63) - 1
_MAX_NOTE_CHARS = 256 * 1024  # c2sp.org/signed-note: accept at least 16 signatures of up to ~5 kB each
_MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 "  # em dash, space

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\Z")
_LOWER_HEX = re.compile(r"([0-9a-f]{2})+\Z")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII control characters other than newline


def mldsa_available() -> bool:
    """Whether the installed ``cryptography`` can make and check ML-DSA-65 signatures."""
    if mldsa is None:
        return False
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        return bool(backend.mldsa_supported())
    except Exception:  # pragma: no cover - older or unusual backends
        return False


def _require_mldsa() -> None:
    if not mldsa_available():
        raise RuntimeError("this cryptography build has no ML-DSA support (cryptography 50.0.2 has it)")


class CheckpointFormatError(ValueError):
    """A checkpoint field or body that does not follow the format exactly."""


class KeyFileError(Exception):
    """A key file that cannot be used: unreadable, of the wrong algorithm, or readable by others."""


class SignatureErrorReason(enum.StrEnum):
    MALFORMED = "malformed"  # not a well-formed signed note, or its body is not a well-formed checkpoint
    UNKNOWN_KEY = "unknown_key"  # no signature line from the pinned key (name and key ID)
    BAD_SIGNATURE = "bad_signature"  # a line from the pinned key whose signature does not verify


class SignatureError(Exception):
    """A note rejected by a :class:`Verifier`; ``reason`` says which check failed."""

    def __init__(self, reason: SignatureErrorReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_strict(text: str) -> bytes:
    """Standard padded base64, canonical only (no whitespace, no non-zero padding bits)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None
    if _b64(raw) != text:
        raise ValueError("non-canonical base64")
    return raw


def _check_key_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("key name must be a non-empty str")
    if "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise ValueError(f"key name {name!r} must not contain spaces, '+' or control characters")
    return name


def key_id(name: str, sig_type: bytes, public_key: bytes) -> bytes:
    """c2sp.org/signed-note key ID: SHA-256(name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + sig_type + public_key).digest()[:4]


# --------------------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint body with two extension lines.

    ``origin`` names the log (e.g. ``hub.local/ledger/v1``): non-empty, no spaces, no ``+``, no controls.
    ``root`` is the 32-byte RFC 6962 tree head at ``tree_size``; ``state_digest`` is the 32-byte digest
    of the replayed state (written as lowercase hex); ``hub_time_ns`` is hub time in ns since the epoch.
    """

    origin: str
    tree_size: int
    root: bytes
    state_digest: bytes
    hub_time_ns: int

    def __post_init__(self) -> None:
        try:
            _check_key_name(self.origin)
        except ValueError:
            raise CheckpointFormatError(f"bad origin {self.origin!r}: non-empty, no spaces, '+' or controls") from None
        if type(self.tree_size) is not int or not 0 <= self.tree_size <= _MAX_TREE_SIZE:
            raise CheckpointFormatError(f"tree_size must be an int in [0, 2**64), got {self.tree_size!r}")
        if type(self.root) is not bytes or len(self.root) != HASH_SIZE:
            raise CheckpointFormatError("root must be 32 bytes")
        if type(self.state_digest) is not bytes or len(self.state_digest) != STATE_DIGEST_SIZE:
            raise CheckpointFormatError(f"state_digest must be {STATE_DIGEST_SIZE} bytes")
        if type(self.hub_time_ns) is not int or not 0 <= self.hub_time_ns <= _MAX_TIME_NS:
            raise CheckpointFormatError(f"hub_time_ns must be an int in [0, 2**63), got {self.hub_time_ns!r}")

    def body(self) -> str:
        """The note text: ``origin\\nsize\\nbase64(root)\\nstate <hex>\\ntime <ns>\\n``."""
        return (
            f"{self.origin}\n{self.tree_size}\n{_b64(self.root)}\n"
            f"state {self.state_digest.hex()}\ntime {self.hub_time_ns}\n"
        )

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Strict inverse of :meth:`body`: anything else raises :class:`CheckpointFormatError`."""
        if not isinstance(body, str):
            raise CheckpointFormatError("body must be str")
        if not body.endswith("\n"):
            raise CheckpointFormatError("body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) != 5:
            raise CheckpointFormatError(f"expected 5 lines, got {len(lines)}")
        origin, size_text, root_text, state_line, time_line = lines
        if not _DECIMAL.match(size_text):
            raise CheckpointFormatError(f"tree size {size_text!r} is not a decimal without leading zeros")
        try:
            root = _b64_strict(root_text)
        except ValueError as exc:
            raise CheckpointFormatError(f"root: {exc}") from None
        if not state_line.startswith("state "):
            raise CheckpointFormatError("fourth line must be 'state <hex>'")
        state_hex = state_line[len("state "):]
        if not _LOWER_HEX.match(state_hex):
            raise CheckpointFormatError("state digest must be lowercase hex")
        if not time_line.startswith("time "):
            raise CheckpointFormatError("fifth line must be 'time <ns>'")
        time_text = time_line[len("time "):]
        if not _DECIMAL.match(time_text):
            raise CheckpointFormatError(f"time {time_text!r} is not a decimal without leading zeros")
        cp = cls(origin, int(size_text), root, bytes.fromhex(state_hex), int(time_text))
        if cp.body() != body:  # belt and braces: parse is an exact inverse
            raise CheckpointFormatError("body is not in canonical form")
        return cp


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint and its signed note text (body, blank line, signature lines)."""

    checkpoint: Checkpoint
    note: str

    @property
    def signature_lines(self) -> list[str]:
        return self.note[len(self.checkpoint.body()) + 1:].splitlines()


# --------------------------------------------------------------------------------------------------
# Signers and verifiers
# --------------------------------------------------------------------------------------------------


class _NoteKey:
    """Name, algorithm and public key of a note key; the verifier key string in sumdb format."""

    sig_type: bytes = b""
    public_key_size: int = 0

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = _check_key_name(name)
        if type(public_key) is not bytes or len(public_key) != self.public_key_size:
            raise ValueError(f"{type(self).__name__}: public key must be {self.public_key_size} bytes")
        self.public_key_bytes = public_key
        self.key_id = key_id(name, self.sig_type, public_key)

    @property
    def verifier_key(self) -> str:
        """``<name>+<hex key id>+<base64(type || public key)>`` as in ``sumdb/note`` verifier keys."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(self.sig_type + self.public_key_bytes)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.verifier_key[:80]!r})"


class _NoteVerifier(_NoteKey):
    def _verify_raw(self, signature: bytes, message: bytes) -> bool:
        raise NotImplementedError

    def verify(self, note: str | bytes) -> Checkpoint:
        """The checkpoint of a note signed by this key; :class:`SignatureError` otherwise."""
        return verify_checkpoint(note, self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _NoteVerifier):
            return NotImplemented
        return type(self) is type(other) and self.verifier_key == other.verifier_key

    def __hash__(self) -> int:
        return hash(self.verifier_key)


class Verifier(_NoteVerifier):
    """Pinned Ed25519 note key: ``Verifier(name, 32-byte public key)``."""

    sig_type = ED25519_TYPE
    public_key_size = 32

    def __init__(self, name: str, public_key: bytes) -> None:
        super().__init__(name, public_key)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)

    def _verify_raw(self, signature: bytes, message: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class MLDSAVerifier(_NoteVerifier):
    """Pinned ML-DSA-65 note key (the optional post-quantum line)."""

    sig_type = MLDSA65_TYPE
    public_key_size = 1952

    def __init__(self, name: str, public_key: bytes) -> None:
        _require_mldsa()
        super().__init__(name, public_key)
        self._key = mldsa.MLDSA65PublicKey.from_public_bytes(public_key)

    def _verify_raw(self, signature: bytes, message: bytes) -> bool:
        if len(signature) != 3309:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class MLDSASigner(_NoteKey):
    """ML-DSA-65 note key for the optional post-quantum signature line."""

    sig_type = MLDSA65_TYPE
    public_key_size = 1952

    def __init__(self, private_key: mldsa.MLDSA65PrivateKey, name: str) -> None:
        _require_mldsa()
        if not isinstance(private_key, mldsa.MLDSA65PrivateKey):
            raise TypeError("private_key must be an MLDSA65PrivateKey")
        super().__init__(name, private_key.public_key().public_bytes_raw())
        self._key = private_key

    @classmethod
    def generate(cls, name: str) -> MLDSASigner:
        _require_mldsa()
        return cls(mldsa.MLDSA65PrivateKey.generate(), name)

    def signature_line(self, text: str) -> str:
        sig = self._key.sign(text.encode("utf-8"))
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + sig)}\n"

    def verifier(self) -> MLDSAVerifier:
        return MLDSAVerifier(self.name, self.public_key_bytes)


class Signer(_NoteKey):
    """Ed25519 checkpoint signer, optionally adding an ML-DSA-65 line from ``post_quantum``."""

    sig_type = ED25519_TYPE
    public_key_size = 32

    def __init__(
        self, private_key: ed25519.Ed25519PrivateKey, name: str, *, post_quantum: MLDSASigner | None = None
    ) -> None:
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        super().__init__(name, private_key.public_key().public_bytes_raw())
        if post_quantum is not None and post_quantum.name == name:
            raise ValueError("the post-quantum key needs its own key name")
        self._key = private_key
        self.post_quantum = post_quantum

    @classmethod
    def generate(cls, name: str, *, post_quantum: MLDSASigner | None = None) -> Signer:
        return cls(ed25519.Ed25519PrivateKey.generate(), name, post_quantum=post_quantum)

    def signature_line(self, text: str) -> str:
        sig = self._key.sign(text.encode("utf-8"))
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + sig)}\n"

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        """Note text = body + "\\n" + the Ed25519 line (+ the ML-DSA-65 line when configured)."""
        body = checkpoint.body()
        lines = self.signature_line(body)
        if self.post_quantum is not None:
            lines += self.post_quantum.signature_line(body)
        return SignedCheckpoint(checkpoint, body + "\n" + lines)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key_bytes)

    def verifiers(self) -> list[Verifier | MLDSAVerifier]:
        """Verifiers for every line this signer writes (Ed25519 first)."""
        out: list[Verifier | MLDSAVerifier] = [self.verifier()]
        if self.post_quantum is not None:
            out.append(self.post_quantum.verifier())
        return out


def parse_verifier_key(vkey: str) -> Verifier | MLDSAVerifier:
    """Parse ``<name>+<hex key id>+<base64(type || public key)>``; the key ID must match."""
    if not isinstance(vkey, str):
        raise ValueError("verifier key must be str")
    parts = vkey.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise ValueError("verifier key must be <name>+<hex id>+<base64 key>")
    name, id_hex, key_b64 = parts
    _check_key_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", id_hex):
        raise ValueError("verifier key id must be 8 lowercase hex digits")
    raw = _b64_strict(key_b64)
    verifier: Verifier | MLDSAVerifier
    if raw[:1] == ED25519_TYPE and len(raw) == 1 + Verifier.public_key_size:
        verifier = Verifier(name, raw[1:])
    elif raw.startswith(MLDSA65_TYPE) and len(raw) == len(MLDSA65_TYPE) + MLDSAVerifier.public_key_size:
        verifier = MLDSAVerifier(name, raw[len(MLDSA65_TYPE):])
    else:
        raise ValueError("unsupported verifier key algorithm or key length")
    if verifier.key_id.hex() != id_hex:
        raise ValueError("verifier key id does not match its name and key")
    return verifier


def _split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Note text and its signatures ``(name, key id, signature)``; SignatureError(MALFORMED) otherwise."""

    def bad(detail: str) -> SignatureError:
        return SignatureError(SignatureErrorReason.MALFORMED, detail)

    if isinstance(note, bytes):
        if len(note) > 4 * _MAX_NOTE_CHARS:
            raise bad("note too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise bad("note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise bad("note must be str or bytes")
    if len(note) > _MAX_NOTE_CHARS:
        raise bad("note too large")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise bad("note is not valid UTF-8 (lone surrogate)") from None
    if _CONTROL.search(note):
        raise bad("note contains control characters")
    if not note.endswith("\n"):
        raise bad("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise bad("no blank line before the signatures")
    text = note[: split + 1]
    block = note[split + 2:]
    if not block:
        raise bad("no signature lines")
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in block[:-1].split("\n"):
        if len(sigs) >= _MAX_SIGNATURES:
            raise bad("too many signatures")
        if not line.startswith(_SIG_PREFIX):
            raise bad("signature line must start with an em dash and a space")
        fields = line[len(_SIG_PREFIX):].split(" ")
        if len(fields) != 2:
            raise bad("signature line must be '— <name> <base64>'")
        name, sig_b64 = fields
        try:
            _check_key_name(name)
            raw = _b64_strict(sig_b64)
        except ValueError as exc:
            raise bad(f"signature line: {exc}") from None
        if len(raw) < 5:
            raise bad("signature too short")
        sigs.append((name, raw[:4], raw[4:]))
    return text, sigs


def open_note(note: str | bytes, *verifiers: Verifier | MLDSAVerifier) -> str:
    """The text of a signed note that carries a valid signature from every given verifier's key.

    Lines from other keys (other names, or the same name with another key ID) are ignored, as
    c2sp.org/signed-note requires; every line from a given key must verify. Raises :class:`SignatureError`
    with reason ``MALFORMED``, ``UNKNOWN_KEY`` (no line from a given key) or ``BAD_SIGNATURE``.
    """
    if not verifiers:
        raise ValueError("open_note needs at least one verifier")
    text, sigs = _split_note(note)
    message = text.encode("utf-8")
    for v in verifiers:
        found = False
        for name, kid, sig in sigs:
            if name == v.name and kid == v.key_id:
                found = True
                if not v._verify_raw(sig, message):
                    raise SignatureError(SignatureErrorReason.BAD_SIGNATURE, f"signature by {v.name} does not verify")
        if not found:
            raise SignatureError(SignatureErrorReason.UNKNOWN_KEY, f"no signature from {v.name}+{v.key_id.hex()}")
    return text


def verify_checkpoint(note: str | bytes, *verifiers: Verifier | MLDSAVerifier) -> Checkpoint:
    """The checkpoint in ``note``, checked as by :func:`open_note` (signatures first), then parsed strictly;
    a body that is not a well-formed checkpoint raises :class:`SignatureError` with reason ``MALFORMED``."""
    text = open_note(note, *verifiers)
    try:
        return Checkpoint.parse(text)
    except CheckpointFormatError as exc:
        raise SignatureError(SignatureErrorReason.MALFORMED, f"checkpoint body: {exc}") from None


class AllKeys:
    """Pinned keys that must all have signed a note: the Ed25519 key and the ML-DSA-65 key of a
    ledger that signs its checkpoints post-quantum too. Usable wherever one verifier is."""

    def __init__(self, *verifiers: Verifier | MLDSAVerifier) -> None:
        if not verifiers:
            raise ValueError("AllKeys needs at least one verifier")
        self.verifiers = verifiers

    def verify(self, note: str | bytes) -> Checkpoint:
        return verify_checkpoint(note, *self.verifiers)


# --------------------------------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``data``, atomically and never overwriting.
    Returns False if the file already existed (someone else created it first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # exact mode, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if path exists: no overwrite of an existing key
    except FileExistsError:
        return False
    except OSError:  # file system without hard links: exclusive create in place instead
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def _write_public_file(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _load_private_pem(path: Path) -> object:  # a cryptography private key of any type
    st = path.stat()
    if st.st_mode & 0o077:
        raise KeyFileError(f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PKCS#8 PEM private key ({exc})") from None


_K = TypeVar("_K")


def _load_or_create_key(path: Path, key_type: type[_K], generate: Callable[[], _K]) -> _K:
    if not path.exists():
        key = generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        if _create_private_file(path, pem):
            return key
    key = _load_private_pem(path)
    if not isinstance(key, key_type):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, expected {key_type.__name__}")
    return key


def load_or_create_signer(
    data_dir: str | os.PathLike[str], name: str, *, post_quantum: bool = False, pq_name: str | None = None
) -> Signer:
    """The ledger's checkpoint signer, creating its key on first use.

    The Ed25519 private key lives in ``data_dir/ledger_ed25519.key`` (PKCS#8 PEM, mode 0600, never
    overwritten); its verifier key string is (re)written to ``data_dir/ledger_ed25519.pub``. With
    ``post_quantum=True`` an ML-DSA-65 key is kept the same way in ``ledger_mldsa65.key`` / ``.pub`` under
    key name ``pq_name`` (default ``<name>/ml-dsa-65``) and every checkpoint gets a second signature line.
    """
    _check_key_name(name)
    directory = Path(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ed_key = _load_or_create_key(directory / ED25519_KEY_FILE, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey.generate)
    pq: MLDSASigner | None = None
    if post_quantum:
        _require_mldsa()
        pq_key = _load_or_create_key(directory / MLDSA65_KEY_FILE, mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PrivateKey.generate)
        pq = MLDSASigner(pq_key, pq_name if pq_name is not None else f"{name}/ml-dsa-65")
        _write_public_file(directory / MLDSA65_PUB_FILE, pq.verifier_key + "\n")
    signer = Signer(ed_key, name, post_quantum=pq)
    _write_public_file(directory / ED25519_PUB_FILE, signer.verifier_key + "\n")
    return signer


def load_verifier(path: str | os.PathLike[str]) -> Verifier | MLDSAVerifier:
    """Read a verifier key file written by :func:`load_or_create_signer` (one line, trailing newline optional)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    return parse_verifier_key(text)

