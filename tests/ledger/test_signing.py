"""Signed checkpoints: note format, Go sumdb/note interop, tampering, key files, optional ML-DSA-65 line."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.signing import (
    ED25519_KEY_FILE,
    ED25519_PUB_FILE,
    MLDSA65_KEY_FILE,
    MLDSA65_PUB_FILE,
    Checkpoint,
    CheckpointFormatError,
    KeyFileError,
    MLDSASigner,
    MLDSAVerifier,
    SignatureError,
    SignatureErrorReason,
    Signer,
    Verifier,
    key_id,
    load_or_create_signer,
    load_verifier,
    mldsa_available,
    open_note,
    parse_verifier_key,
    verify_checkpoint,
)

ORIGIN = "hub.local/ledger/v1"
ROOT = hashlib.sha256(b"root").digest()
STATE = hashlib.sha256(b"state").digest()
CP = Checkpoint(ORIGIN, 1234, ROOT, STATE, 1_700_000_000_123_456_789)

needs_mldsa = pytest.mark.skipif(not mldsa_available(), reason="installed cryptography has no ML-DSA support")

# golang.org/x/mod/sumdb/note documentation example (note.go / note_test.go): Ed25519 is deterministic, so
# the same key must produce this exact signature line.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann " + GO_SIG + "\n"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def reason_of(exc: pytest.ExceptionInfo[SignatureError]) -> SignatureErrorReason:
    return exc.value.reason


# --------------------------------------------------------------------------------------------------
# Checkpoint body
# --------------------------------------------------------------------------------------------------


def test_body_format_exact() -> None:
    assert CP.body() == (
        "hub.local/ledger/v1\n"
        "1234\n"
        f"{base64.b64encode(ROOT).decode()}\n"
        f"state {STATE.hex()}\n"
        "time 1700000000123456789\n"
    )
    assert Checkpoint.parse(CP.body()) == CP


@settings(max_examples=200, deadline=None)
@given(
    origin=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="+"), min_size=1, max_size=40),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    state=st.binary(min_size=32, max_size=32),
    ts=st.integers(0, 2**63 - 1),
)
def test_body_round_trip(origin: str, size: int, root: bytes, state: bytes, ts: int) -> None:
    cp = Checkpoint(origin, size, root, state, ts)
    assert Checkpoint.parse(cp.body()) == cp


BAD_BODIES = {
    "no trailing newline": CP.body()[:-1],
    "extra line": CP.body() + "extra\n",
    "missing time": "\n".join(CP.body().split("\n")[:4]) + "\n",
    "empty origin": "\n" + CP.body().split("\n", 1)[1],
    "origin with space": "hub local\n" + CP.body().split("\n", 1)[1],
    "leading zero size": CP.body().replace("\n1234\n", "\n01234\n"),
    "negative size": CP.body().replace("\n1234\n", "\n-1234\n"),
    "plus size": CP.body().replace("\n1234\n", "\n+1234\n"),
    "size too large": CP.body().replace("\n1234\n", f"\n{2**64}\n"),
    "hex size": CP.body().replace("\n1234\n", "\n0x4d2\n"),
    "root not base64": CP.body().replace(base64.b64encode(ROOT).decode(), "!!!!"),
    "root 31 bytes": CP.body().replace(base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[:31]).decode()),
    "root unpadded": CP.body().replace(base64.b64encode(ROOT).decode(), base64.b64encode(ROOT).decode().rstrip("=")),
    "root urlsafe": Checkpoint(ORIGIN, 1, b"\xfb" * 32, STATE, 1).body().replace("+", "-").replace("/", "_"),
    "state uppercase": CP.body().replace(STATE.hex(), STATE.hex().upper()),
    "state short": CP.body().replace(STATE.hex(), STATE.hex()[:-2]),
    "state odd": CP.body().replace(STATE.hex(), STATE.hex()[:-1]),
    "state keyword": CP.body().replace("state ", "State "),
    "state two spaces": CP.body().replace("state ", "state  "),
    "time keyword": CP.body().replace("time ", "timestamp "),
    "time negative": CP.body().replace("time 1", "time -1"),
    "time leading zero": CP.body().replace("time 1", "time 01"),
    "time too large": CP.body().replace("time 1700000000123456789", f"time {2**63}"),
    "crlf": CP.body().replace("\n", "\r\n"),
    "swapped extensions": CP.body().replace(f"state {STATE.hex()}\ntime 1700000000123456789",
                                            f"time 1700000000123456789\nstate {STATE.hex()}"),
    "trailing space": CP.body().replace("\n1234\n", "\n1234 \n"),
    "unicode digits": CP.body().replace("\n1234\n", "\n\u0661\u0662\n"),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_parse_rejects(body: str) -> None:
    with pytest.raises(CheckpointFormatError):
        Checkpoint.parse(body)


@pytest.mark.parametrize("kwargs", [
    {"origin": ""}, {"origin": "a b"}, {"origin": "a+b"}, {"origin": "a\nb"},
    {"tree_size": -1}, {"tree_size": 2**64}, {"tree_size": 1.0}, {"tree_size": True},
    {"root": b"x" * 31}, {"root": "x" * 32}, {"root": bytearray(32)},
    {"state_digest": b"x" * 33}, {"state_digest": STATE.hex()},
    {"hub_time_ns": -1}, {"hub_time_ns": 2**63}, {"hub_time_ns": 1.5},
])
def test_checkpoint_validates_fields(kwargs: dict) -> None:
    fields = {"origin": ORIGIN, "tree_size": 1, "root": ROOT, "state_digest": STATE, "hub_time_ns": 1} | kwargs
    with pytest.raises(CheckpointFormatError):
        Checkpoint(**fields)


# --------------------------------------------------------------------------------------------------
# Signing and verification
# --------------------------------------------------------------------------------------------------


def test_round_trip(signer: Signer) -> None:
    signed = signer.sign(CP)
    assert signed.checkpoint == CP
    assert signer.verifier().verify(signed.note) == CP
    assert signer.verifier().verify(signed.note.encode()) == CP
    assert verify_checkpoint(signed.note, signer.verifier()) == CP
    assert len(signed.signature_lines) == 1


def test_note_layout_and_key_id(signer: Signer) -> None:
    note = signer.sign(CP).note
    body, sig_line = note.split("\n\n")
    assert body + "\n" == CP.body()
    assert sig_line.endswith("\n") and sig_line.count("\n") == 1
    dash, name, b64 = sig_line[:-1].split(" ")
    assert dash == "\u2014" and name == ORIGIN
    raw = base64.b64decode(b64)
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key_bytes).digest()[:4]
    assert raw[:4] == expected_id == signer.key_id == key_id(ORIGIN, b"\x01", signer.public_key_bytes)
    assert len(raw) == 4 + 64
    ed25519.Ed25519PublicKey.from_public_bytes(signer.public_key_bytes).verify(raw[4:], CP.body().encode())
    key_b64 = base64.b64encode(b"\x01" + signer.public_key_bytes).decode()
    assert signer.verifier_key == f"{ORIGIN}+{expected_id.hex()}+{key_b64}"


def test_go_sumdb_note_interop() -> None:
    """Byte-for-byte agreement with golang.org/x/mod/sumdb/note's documented example."""
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 1
    go_signer = Signer(ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:]), "PeterNeumann")
    assert go_signer.verifier_key == GO_VKEY
    assert go_signer.signature_line(GO_TEXT) == "\u2014 PeterNeumann " + GO_SIG + "\n"
    verifier = parse_verifier_key(GO_VKEY)
    assert isinstance(verifier, Verifier)
    assert open_note(GO_NOTE, verifier) == GO_TEXT
    with pytest.raises(SignatureError) as exc:
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE
    # A validly signed note that is not a checkpoint is still refused as a checkpoint.
    with pytest.raises(SignatureError) as exc:
        verifier.verify(GO_NOTE)
    assert reason_of(exc) is SignatureErrorReason.MALFORMED


@pytest.mark.parametrize("field,value", [
    ("tree_size", 1235), ("root", hashlib.sha256(b"other").digest()),
    ("state_digest", hashlib.sha256(b"other").digest()), ("hub_time_ns", 1_700_000_000_123_456_790),
])
def test_tampered_body(signer: Signer, field: str, value: object) -> None:
    note = signer.sign(CP).note
    forged_body = Checkpoint(**({f: getattr(CP, f) for f in CP.__dataclass_fields__} | {field: value})).body()
    forged = note.replace(CP.body(), forged_body)
    assert forged != note
    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(forged)
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE


def _with_sig_bytes(note: str, mutate) -> str:
    body, line = note.split("\n\n")
    dash, name, b64 = line[:-1].split(" ")
    raw = bytearray(base64.b64decode(b64))
    mutate(raw)
    return f"{body}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


@pytest.mark.parametrize("byte", [4, 20, 40, 67])
def test_tampered_signature(signer: Signer, byte: int) -> None:
    def mutate(raw: bytearray) -> None:
        raw[byte] ^= 0x01

    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(_with_sig_bytes(signer.sign(CP).note, mutate))
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE


def test_tampered_signature_length(signer: Signer) -> None:
    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(_with_sig_bytes(signer.sign(CP).note, lambda raw: raw.append(0)))
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE


def test_tampered_key_id_is_unknown_key(signer: Signer) -> None:
    def mutate(raw: bytearray) -> None:
        raw[0] ^= 0x80

    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(_with_sig_bytes(signer.sign(CP).note, mutate))
    assert reason_of(exc) is SignatureErrorReason.UNKNOWN_KEY


def test_wrong_key(signer: Signer) -> None:
    other = Signer.generate("someone.else/log")
    with pytest.raises(SignatureError) as exc:
        other.verifier().verify(signer.sign(CP).note)
    assert reason_of(exc) is SignatureErrorReason.UNKNOWN_KEY


def test_different_key_same_name(signer: Signer) -> None:
    impostor = Signer.generate(ORIGIN)
    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(impostor.sign(CP).note)
    assert reason_of(exc) is SignatureErrorReason.UNKNOWN_KEY


def test_impostor_claiming_our_key_id(signer: Signer) -> None:
    """A different key that writes our name and key ID gets a signature failure, not acceptance."""
    impostor = Signer.generate(ORIGIN)
    note = impostor.sign(CP).note

    def mutate(raw: bytearray) -> None:
        raw[:4] = signer.key_id

    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(_with_sig_bytes(note, mutate))
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE


def test_extra_signatures_from_other_keys_are_ignored(signer: Signer) -> None:
    note = signer.sign(CP).note
    witness = Signer.generate("witness.example/w1")
    cosigned = note + witness.signature_line(CP.body())
    impostor_line = Signer.generate(ORIGIN).signature_line(CP.body())  # same name, other key ID
    assert signer.verifier().verify(cosigned + impostor_line) == CP
    assert signer.verifier().verify(impostor_line.join([note, ""])) == CP
    assert verify_checkpoint(cosigned, signer.verifier(), witness.verifier()) == CP
    # Every requested key must have signed.
    with pytest.raises(SignatureError) as exc:
        verify_checkpoint(note, signer.verifier(), witness.verifier())
    assert reason_of(exc) is SignatureErrorReason.UNKNOWN_KEY


def test_duplicate_bad_line_from_known_key_rejects(signer: Signer) -> None:
    note = signer.sign(CP).note
    bad = _with_sig_bytes(note, lambda raw: raw.__setitem__(10, raw[10] ^ 1)).split("\n\n")[1]
    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(note + bad)
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _spare_bits_set(b64: str) -> str:
    """Same bytes, but a padding (spare) bit set in the last data character: decodes, yet is not canonical."""
    assert b64.endswith("=") and not b64.endswith("==")  # 68-byte signatures: one padding character
    c = b64[-2]
    return b64[:-2] + _B64_ALPHABET[_B64_ALPHABET.index(c) ^ 1] + "="


def _malformed_notes(signer: Signer) -> dict[str, object]:
    note = signer.sign(CP).note
    body, line = note.split("\n\n")
    b64 = line[:-1].split(" ")[2]
    return {
        "empty": "",
        "body only": CP.body(),
        "no trailing newline": note[:-1],
        "no blank line": body + "\n" + line,
        "empty signature block": CP.body() + "\n",
        "blank line after signatures": note + "\n",
        "hyphen instead of em dash": note.replace("\u2014", "-"),
        "en dash": note.replace("\u2014", "\u2013"),
        "no space after dash": note.replace("\u2014 ", "\u2014"),
        "two spaces": note.replace(f" {b64}", f"  {b64}"),
        "trailing space": note.replace(f"{b64}\n", f"{b64} \n"),
        "name with plus": note.replace(f"{ORIGIN} ", "hub+x "),
        "name with nbsp": note.replace(f"{ORIGIN} ", "hub\u00a0x "),
        "bad base64": note.replace(b64, "!!" + b64[2:]),
        "unpadded base64": note.replace(b64, b64.rstrip("=")),
        "non-canonical base64": note.replace(b64, _spare_bits_set(b64)),
        "signature too short": note.replace(b64, base64.b64encode(b"abcd").decode()),
        "carriage return": note.replace("\n", "\r\n"),
        "tab in body": note.replace("\n1234\n", "\n1234\t\n"),
        "NUL": note.replace("1234", "12\x0034"),
        "too many signatures": note + line * 120,
        "oversized": CP.body() + "x" * 300_000 + "\n\n" + line,
        "bytes not utf-8": note.encode() + b"\xff",
        "lone surrogate": note.replace("hub.local", "hub\udc80local"),
        "not text": 12345,
        "none": None,
        "body not a checkpoint": "hello\n\n" + signer.signature_line("hello\n"),
        "checkpoint missing extensions": "hub.local/ledger/v1\n1\n" + base64.b64encode(ROOT).decode() + "\n\n"
        + signer.signature_line("hub.local/ledger/v1\n1\n" + base64.b64encode(ROOT).decode() + "\n"),
    }


@pytest.mark.parametrize("case", list(_malformed_notes(Signer.generate(ORIGIN)).keys()))
def test_malformed_notes_rejected(signer: Signer, case: str) -> None:
    note = _malformed_notes(signer)[case]
    with pytest.raises(SignatureError) as exc:
        signer.verifier().verify(note)  # type: ignore[arg-type]
    assert reason_of(exc) is SignatureErrorReason.MALFORMED, exc.value
    assert "malformed" in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_mutations_never_verify_or_crash(signer: Signer, data: st.DataObject) -> None:
    note = signer.sign(CP).note.encode()
    pos = data.draw(st.integers(0, len(note) - 1))
    op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
    if op == "flip":
        mutated = note[:pos] + bytes([note[pos] ^ (1 << data.draw(st.integers(0, 7)))]) + note[pos + 1:]
    elif op == "delete":
        mutated = note[:pos] + note[pos + 1:]
    else:
        mutated = note[:pos] + bytes([data.draw(st.integers(0, 255))]) + note[pos:]
    try:
        result = signer.verifier().verify(mutated)
    except SignatureError:
        return
    # Only a change that leaves the signed bytes and our signature intact can pass (e.g. none at all).
    assert result == CP and mutated == note


def test_signer_and_verifier_argument_checks() -> None:
    with pytest.raises(ValueError):
        Signer.generate("has space")
    with pytest.raises(ValueError):
        Signer.generate("has+plus")
    with pytest.raises(ValueError):
        Signer.generate("")
    with pytest.raises(TypeError):
        Signer(ec.generate_private_key(ec.SECP256R1()), ORIGIN)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Verifier(ORIGIN, b"\x00" * 31)
    with pytest.raises(ValueError):
        verify_checkpoint("x")


# --------------------------------------------------------------------------------------------------
# Verifier key strings
# --------------------------------------------------------------------------------------------------


def test_verifier_key_round_trip(signer: Signer) -> None:
    v = parse_verifier_key(signer.verifier_key)
    assert v == signer.verifier()
    assert v.verify(signer.sign(CP).note) == CP


def _upper_hex(key_hash: str) -> str:
    upper = key_hash.upper()
    return upper if upper != key_hash else upper[:-1] + "A"


@pytest.mark.parametrize("mangle", [
    lambda k: k.split("+", 1)[0],
    lambda k: k.rsplit("+", 1)[0],
    lambda k: k.replace("+", "+0", 1),
    lambda k: k.upper(),
    # the key hash in upper-case hex (a hash of digits only has no upper case: then a letter in it)
    lambda k: "+".join([k.split("+")[0], _upper_hex(k.split("+")[1]), k.split("+", 2)[2]]),
    lambda k: "+".join([k.split("+")[0], "00000000", k.split("+", 2)[2]]),
    lambda k: "other.name" + k[k.index("+"):],
    lambda k: k + "A",
    lambda k: k[:-1],
    lambda k: k + "\n",
    lambda k: " " + k,
])
def test_verifier_key_rejects_mangled(signer: Signer, mangle) -> None:
    with pytest.raises(ValueError):
        parse_verifier_key(mangle(signer.verifier_key))


def test_verifier_key_rejects_unknown_algorithm() -> None:
    pub = os.urandom(32)
    for type_byte in (b"\x02", b"\x04", b"\xff"):
        kid = key_id("x", type_byte, pub)
        with pytest.raises(ValueError):
            parse_verifier_key(f"x+{kid.hex()}+{base64.b64encode(type_byte + pub).decode()}")


# --------------------------------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    old_umask = os.umask(0)  # even with a permissive umask the key must be 0600
    try:
        s1 = load_or_create_signer(data_dir, ORIGIN)
    finally:
        os.umask(old_umask)
    key_file = data_dir / ED25519_KEY_FILE
    assert _mode(key_file) == 0o600
    pem = key_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert isinstance(serialization.load_pem_private_key(pem, None), ed25519.Ed25519PrivateKey)
    assert (data_dir / ED25519_PUB_FILE).read_text() == s1.verifier_key + "\n"
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []  # no temp files left
    s2 = load_or_create_signer(data_dir, ORIGIN)
    assert s2.public_key_bytes == s1.public_key_bytes
    assert key_file.read_bytes() == pem  # never rewritten
    assert s2.verifier().verify(s1.sign(CP).note) == CP


def test_public_key_export_import(tmp_path: Path) -> None:
    s = load_or_create_signer(tmp_path, ORIGIN)
    v = load_verifier(tmp_path / ED25519_PUB_FILE)
    assert isinstance(v, Verifier)
    assert v == s.verifier()
    assert v.verify(s.sign(CP).note) == CP
    # Key name change: same key, new key ID, public file follows.
    s2 = load_or_create_signer(tmp_path, "hub.prod/ledger/v2")
    assert s2.public_key_bytes == s.public_key_bytes and s2.key_id != s.key_id
    assert load_verifier(tmp_path / ED25519_PUB_FILE) == s2.verifier()
    (tmp_path / "no-newline.pub").write_text(s.verifier_key)
    assert load_verifier(tmp_path / "no-newline.pub") == s.verifier()
    (tmp_path / "bad.pub").write_text("garbage\n")
    with pytest.raises(ValueError):
        load_verifier(tmp_path / "bad.pub")


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_signer(tmp_path, ORIGIN)
    os.chmod(tmp_path / ED25519_KEY_FILE, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_signer(tmp_path, ORIGIN)


def test_key_file_wrong_type_or_garbage(tmp_path: Path) -> None:
    key_file = tmp_path / ED25519_KEY_FILE
    key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    with pytest.raises(KeyFileError, match="Ed25519PrivateKey"):
        load_or_create_signer(tmp_path, ORIGIN)
    key_file.write_bytes(b"not a key")
    with pytest.raises(KeyFileError):
        load_or_create_signer(tmp_path, ORIGIN)


# --------------------------------------------------------------------------------------------------
# Optional post-quantum (ML-DSA-65) line
# --------------------------------------------------------------------------------------------------


@needs_mldsa
def test_post_quantum_line(tmp_path: Path) -> None:
    s = load_or_create_signer(tmp_path, ORIGIN, post_quantum=True)
    assert s.post_quantum is not None and s.post_quantum.name == f"{ORIGIN}/ml-dsa-65"
    assert _mode(tmp_path / MLDSA65_KEY_FILE) == 0o600
    note = s.sign(CP).note
    lines = note.split("\n\n")[1].splitlines()
    assert [ln.split(" ")[1] for ln in lines] == [ORIGIN, f"{ORIGIN}/ml-dsa-65"]
    raw = base64.b64decode(lines[1].split(" ")[2])
    assert raw[:4] == s.post_quantum.key_id and len(raw) == 4 + 3309
    ed = load_verifier(tmp_path / ED25519_PUB_FILE)
    pq = load_verifier(tmp_path / MLDSA65_PUB_FILE)
    assert isinstance(pq, MLDSAVerifier)
    assert ed.verify(note) == CP  # Ed25519-only verifiers ignore the PQ line
    assert pq.verify(note) == CP
    assert verify_checkpoint(note, ed, pq) == CP
    # Same keys on reload.
    again = load_or_create_signer(tmp_path, ORIGIN, post_quantum=True)
    assert again.post_quantum is not None and again.post_quantum.verifier() == pq


@needs_mldsa
def test_post_quantum_tampering() -> None:
    pq_signer = MLDSASigner.generate(f"{ORIGIN}/ml-dsa-65")
    s = Signer.generate(ORIGIN, post_quantum=pq_signer)
    note = s.sign(CP).note
    body, block = note.split("\n\n")
    ed_line = block.splitlines()[0]
    bad_pq = with_pq_signature_altered(note, 100)
    with pytest.raises(SignatureError) as exc:
        pq_signer.verifier().verify(bad_pq)
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE
    with pytest.raises(SignatureError) as exc:
        verify_checkpoint(bad_pq, s.verifier(), pq_signer.verifier())
    assert reason_of(exc) is SignatureErrorReason.BAD_SIGNATURE
    assert s.verifier().verify(bad_pq) == CP  # for an Ed25519-only verifier the PQ line is a stranger's
    forged = note.replace(CP.body(), Checkpoint(ORIGIN, 9999, ROOT, STATE, 1).body())
    with pytest.raises(SignatureError):
        pq_signer.verifier().verify(forged)
    with pytest.raises(SignatureError) as exc:
        pq_signer.verifier().verify(f"{body}\n\n{ed_line}\n")
    assert reason_of(exc) is SignatureErrorReason.UNKNOWN_KEY
    assert parse_verifier_key(pq_signer.verifier_key) == pq_signer.verifier()


@needs_mldsa
def test_post_quantum_needs_its_own_name() -> None:
    with pytest.raises(ValueError):
        Signer.generate(ORIGIN, post_quantum=MLDSASigner.generate(ORIGIN))


def test_without_post_quantum_no_pq_files(tmp_path: Path) -> None:
    s = load_or_create_signer(tmp_path, ORIGIN)
    assert s.post_quantum is None
    assert not (tmp_path / MLDSA65_KEY_FILE).exists()
    assert len(s.sign(CP).signature_lines) == 1


def with_pq_signature_altered(note: str, byte: int) -> str:
    """``note`` (an Ed25519 line, then an ML-DSA-65 line) with one bit of the ML-DSA signature flipped."""
    body, block = note.split("\n\n")
    ed_line, pq_line = block.splitlines()
    dash, name, b64 = pq_line.split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[byte] ^= 1
    return f"{body}\n\n{ed_line}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
