"""Start-up recovery: replay the ledger through the engines and prove the rebuilt state.

Commands are re-run in ledger order, in batches per engine, and the events they produce now
must equal, byte for byte, the events recorded then. At the last checkpoint the rebuilt state
digest must equal the signed one. Only then does the hub resume sequence numbers and serve.
Sessions that were open (with cancel-on-disconnect) when the hub stopped get their DAY orders
cancelled, as new journaled commands.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from compliance.risk import RiskConfigError, risk_config_from_json
from hub.config import ConfigError
from hub.core import Hub, OrderMeta
from hub.journal import EntryKind
from ledger.entries import decode_all
from ledger.merkle import CompactRange
from ledger.records import RecordType, canonical_json, risk_cancel_orders, risk_cancel_remaining
from ledger.signing import SignatureError
from ledger.store import GENESIS_CHAIN, LedgerJournal, LedgerStore, chain_link
from matching.types import AssetClass, NewOrder, decode_commands

log = logging.getLogger("hub.recovery")
_BATCH = 4096
_ENTRY_KIND = {RecordType.ADMIN: EntryKind.ADMIN, RecordType.GATEWAY_REJECT: EntryKind.GATEWAY_REJECT,
               RecordType.CONFIG: EntryKind.CONFIG}


class RecoveryError(RuntimeError):
    """The ledger does not rebuild to the state it committed to; the hub must not serve."""


@dataclass
class RecoveryReport:
    records: int = 0
    commands: int = 0
    last_seq: int = 0
    checkpoint_size: int = 0
    checkpoint_verified: bool = False
    orphaned_day_orders_cancelled: int = 0
    risk_cancels_settled: int = 0  # cancelled in an engine before a crash, settled after the replay
    interrupted_kill_cancels: int = 0  # in a BLOCK switch's scope but not yet cancelled before a crash
    interrupted_risk_cancels: int = 0  # named by any other risk decision and not yet cancelled before a crash
    removed_participants_orders_cancelled: int = 0  # resting orders of participants the config dropped
    seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@contextlib.contextmanager
def _replaying(where: str) -> Iterator[None]:
    """A record the hub cannot apply (an engine, instrument or symbol it does not have, bytes that are no
    record) is a RecoveryError naming the record, not a stray KeyError that hides why the hub won't start."""
    try:
        yield
    except RecoveryError:
        raise
    except (LookupError, ValueError, TypeError) as exc:
        raise RecoveryError(f"{where} cannot be replayed by this hub ({type(exc).__name__}: {exc}): the ledger is "
                            "malformed or was written with other instruments") from exc


class _Batch:
    """Consecutive commands of one journal entry awaiting replay, with the events recorded for
    them. The hub registers a whole entry's commands before routing its events, and what it derives
    from them (execution reports, fees, risk) depends on that: a batch must not span two entries.
    An entry block is one entry; other commands are one entry while their engine, hub time,
    arrival time, participant and session stay the same (entries of one fairness batch share a
    hub time, and a fake or coarse clock gives many entries the same one)."""

    def __init__(self) -> None:
        self.asset_class = 0
        self.hub_time_ns = 0
        self.key: tuple = ()
        self.commands: list[bytes] = []
        self.metas: list[OrderMeta | None] = []
        self.events: list[bytes] = []
        self.post_trade: list[bytes] = []  # the fee records the ledger holds for these commands
        self.first_idx = 0

    def flush(self, hub: Hub) -> int:
        if not self.commands:
            return 0
        with _replaying(f"records from index {self.first_idx}"):
            produced, fees = hub.replay_engine_commands(AssetClass(self.asset_class), b"".join(self.commands),
                                                        self.metas, self.key[4])
        if produced != b"".join(self.events):
            raise RecoveryError(
                f"replaying records from index {self.first_idx} produced different events than the ledger "
                "recorded: the engine is not the one that wrote this ledger, or its configuration changed")
        if [f for f in fees if f] != self.post_trade:
            raise RecoveryError(
                f"replaying records from index {self.first_idx} charged different fees than the ledger recorded: "
                "the fee schedule or its state is not the one that wrote this ledger")
        count = len(self.commands)
        self.commands, self.metas, self.events, self.post_trade = [], [], [], []
        return count


def _replay_risk_cancel(hub: Hub, idx: int, rec, detail: dict) -> None:
    """A compact risk-cancel step (one record for many cancels): redo it through the engine; the
    events produced now must be the recorded ones (their count and SHA-256: of the event columns,
    or of the whole buffer in records of the earlier format), and the orders and remaining
    quantities the record lists must be the ones those events cancelled."""
    produced, cols = hub.replay_risk_cancel(rec.seq, rec.hub_time_ns, detail)
    digest = cols.digest() if "digest_sha256" in detail else hashlib.sha256(produced).hexdigest()
    if cols.events != detail["events"] or digest != detail.get("digest_sha256", detail.get("events_sha256")):
        raise RecoveryError(
            f"replaying the risk cancels of record {idx} (seq {rec.seq}) produced different events than the "
            "ledger recorded: the engine is not the one that wrote this ledger, or its state differs")
    if (array("q", cols.order_ids).tolist() != risk_cancel_orders(detail)
            or array("q", cols.remaining).tolist() != risk_cancel_remaining(detail)):
        raise RecoveryError(f"record {idx} (seq {rec.seq}) lists other risk cancels than its events")


def _replay_risk_settle(hub: Hub, idx: int, rec, detail: dict) -> None:
    """A ``risk_settle`` step: settle the oldest unsettled risk cancels again; they must be as many
    as the record says, ending with the order it names."""
    settled = hub.replay_risk_settle(rec.seq, detail, rec.hub_time_ns)
    if len(settled) != detail["orders"] or not settled or settled[-1] != detail["last_order"]:
        raise RecoveryError(f"record {idx} (seq {rec.seq}) settles other risk cancels than the ledger's "
                            "earlier risk-cancel steps left unsettled")


def _meta(hub: Hub, rec, engine_record: bytes) -> OrderMeta | None:
    """The registry entry the order had when it was live, with its entry time and the minimum resting
    time the fairness rules gave it then (a quote's as a post-only limit order's), so both still hold
    after a restart."""
    (cmd,) = decode_commands(engine_record)
    if type(cmd) is not NewOrder:
        return None
    inst = hub.instruments.get(cmd.instrument_id)
    if inst is None:
        return None
    min_rest = hub.fairness.min_resting_ns(  # the class of the CONFIG record in force; quotes alike
        hub.class_of(rec.participant), cmd.order_type, bool(cmd.post_only), cmd.quantity)
    return OrderMeta(rec.participant, rec.client_order_id, rec.session, cmd.instrument_id, inst.symbol, cmd.side,
                     cmd.account, cmd.price, cmd.time_in_force, cmd.display_quantity, rec.is_quote,
                     entry_ns=cmd.ts, min_rest_ns=min_rest)


class _Integrity:
    """What recovery replays must be what was committed: every payload matches its leaf hash,
    the hash chain holds, and the last checkpoint's root and signature match the records (the
    full independent check is ``hub ledger verify``; this is the part replay cannot skip)."""

    def __init__(self, store: LedgerStore, last_cp) -> None:
        self._chain = GENESIS_CHAIN
        self._tree = CompactRange()
        self._last_cp = last_cp
        # A journal knows its own public key; a bare store (read-only tooling) cannot check signatures.
        self._verifier = store.verifier() if isinstance(store, LedgerJournal) else None

    def check(self, idx: int, seq: int, payload: bytes, leaf: bytes, chain: bytes) -> None:
        computed = hashlib.sha256(b"\x00" + payload).digest()
        if computed != leaf:
            raise RecoveryError(f"record {idx} (seq {seq}): payload does not match its leaf hash; run hub ledger verify")
        self._chain = chain_link(self._chain, computed)
        if self._chain != chain:
            raise RecoveryError(f"record {idx} (seq {seq}): hash chain broken; run hub ledger verify")
        self._tree.append(computed)

    def check_checkpoint(self) -> None:
        cp = self._last_cp
        if self._tree.root() != cp.root_hash:
            raise RecoveryError(f"checkpoint at tree size {cp.tree_size}: root does not match the records")
        if self._verifier is not None:
            try:
                signed = self._verifier.verify(cp.note)
            except SignatureError as exc:
                raise RecoveryError(f"checkpoint at tree size {cp.tree_size}: signature invalid ({exc})") from None
            if (signed.tree_size, signed.root, signed.state_digest) != (cp.tree_size, cp.root_hash, cp.state_digest):
                raise RecoveryError(f"checkpoint at tree size {cp.tree_size}: columns differ from the signed note")


def recover(hub: Hub, store: LedgerStore) -> RecoveryReport:
    started = time.perf_counter()
    report = RecoveryReport()
    last_cp = store.last_checkpoint()
    report.checkpoint_size = last_cp.tree_size if last_cp else 0
    _adopt_first_recorded_risk_config(hub, store)
    batch = _Batch()
    last_config: bytes = b""
    integrity = _Integrity(store, last_cp)
    for idx, seq, payload, leaf, chain in store.iter_records():
        with _replaying(f"record {idx} (seq {seq})"):
            integrity.check(idx, seq, payload, leaf, chain)
            block = len(payload) > 1 and payload[1] == RecordType.ENTRY_BLOCK  # one journal entry, whole
            if block:
                report.commands += batch.flush(hub)
            for rec in decode_all(payload):  # an entry block: the records it stands for
                if rec.record_type == RecordType.EVENT:
                    batch.events.append(rec.engine_record)
                elif rec.record_type == RecordType.POST_TRADE:
                    batch.post_trade.append(rec.detail)
                elif rec.record_type == RecordType.COMMAND:
                    key = (rec.asset_class, rec.hub_time_ns, rec.arrival_ns, rec.participant, rec.session)
                    if batch.commands and not block and (key != batch.key or len(batch.commands) >= _BATCH):
                        report.commands += batch.flush(hub)
                    if not batch.commands:
                        batch.asset_class, batch.hub_time_ns, batch.first_idx = rec.asset_class, rec.hub_time_ns, idx
                        batch.key = key
                    batch.commands.append(rec.engine_record)
                    batch.metas.append(_meta(hub, rec, rec.engine_record))
                else:
                    report.commands += batch.flush(hub)
                    detail = rec.detail_json()
                    if rec.record_type == RecordType.ADMIN and detail.get("action") == "risk_cancel":
                        _replay_risk_cancel(hub, idx, rec, detail)
                    elif rec.record_type == RecordType.ADMIN and detail.get("action") == "risk_settle":
                        _replay_risk_settle(hub, idx, rec, detail)
                    else:
                        hub.replay_record(rec.seq, _ENTRY_KIND[rec.record_type], detail, rec.hub_time_ns, rec.participant)
                    if rec.record_type == RecordType.CONFIG:
                        last_config = rec.detail
            if block:
                report.commands += batch.flush(hub)
            report.records = idx + 1
            if last_cp is not None and idx + 1 == last_cp.tree_size:
                integrity.check_checkpoint()
                report.commands += batch.flush(hub)
                rebuilt = hub.state_digest_bytes()
                if rebuilt != last_cp.state_digest:
                    raise RecoveryError(
                        f"state rebuilt from {idx + 1} records has digest {rebuilt.hex()[:16]}..., the checkpoint "
                        f"signed {last_cp.state_digest.hex()[:16]}...")
                report.checkpoint_verified = True
    report.commands += batch.flush(hub)
    if last_cp is not None and not report.checkpoint_verified:
        raise RecoveryError(f"the last checkpoint covers {last_cp.tree_size} records, the ledger has {report.records}")
    report.last_seq = hub.last_sequence
    hub.accepting = True
    report.risk_cancels_settled = hub.unsettled_risk_cancels  # (a new risk config's record settles them)
    _record_config(hub, last_config)
    report.orphaned_day_orders_cancelled = hub.cancel_orphaned_sessions()
    hub.drain_risk_cancels()  # a crash between a kill's cancels and their settling: finish it now
    report.interrupted_kill_cancels = hub.resume_interrupted_kills()  # a crash before its cancels
    report.interrupted_risk_cancels = hub.resume_interrupted_risk_cancels()  # the same, any other risk decision
    report.removed_participants_orders_cancelled = hub.cancel_orders_of_removed_participants()
    hub.checkpoint_now(time.time_ns())
    report.seconds = time.perf_counter() - started
    log.info("recovered %d records (%d commands) in %.2fs; sequence resumes after %d; checkpoint %s",
             report.records, report.commands, report.seconds, report.last_seq,
             "verified" if report.checkpoint_verified else "absent (empty ledger)")
    return report


def config_detail(hub: Hub) -> bytes:
    """Instruments, participants and the risk configuration in force (never token hashes): reports
    need no other source, and replay applies each at its record (``Hub._apply_config``)."""
    instruments = [{f: (int(v) if f == "asset_class" else v) for f, v in
                    ((name, getattr(i, name)) for name in i.__dataclass_fields__)}
                   for i in sorted(hub.config.instruments, key=lambda i: i.instrument_id)]
    participants = [{"id": p.id, "role": p.role.value, "class": p.participant_class.value,
                     "accounts": list(p.accounts), "stp_mode": int(p.stp_mode)} for p in hub.config.participants]
    return canonical_json({"instruments": instruments, "participants": participants,
                           "risk": hub.config.risk.to_json(), "rules": hub.RULES_VERSION})


def _record_config(hub: Hub, last_config: bytes) -> None:
    detail = config_detail(hub)
    if detail != last_config:
        try:
            hub.record_config(detail)
        except RiskConfigError as exc:
            raise ConfigError(f"[risk] cannot take effect on the state this ledger holds: {exc}") from None


def _adopt_first_recorded_risk_config(hub: Hub, store: LedgerStore) -> None:
    """A ledger begun before CONFIG records carried the risk configuration: its first start that
    recorded one had replayed the records before it under that same configuration (and signed
    checkpoints of it), so replay runs them under it too. (A ledger that carries it from its first
    record gets it there, in ``Hub._apply_config``.)"""
    for _idx, payload in store.config_records():
        (rec,) = decode_all(payload)
        detail = rec.detail_json()
        if "risk" in detail:
            if rec.seq > 1:
                hub.adopt_risk_config(risk_config_from_json(detail["risk"]))
            return

