"""The hub's one typed configuration: network, participants and roles, instruments, limits.

``HubConfig.default()`` is the embedded configuration ``hub serve`` runs with when no file is
given; ``load_config(path)`` reads a TOML file of the same shape and rejects unknown keys,
wrong types and inconsistent values with a message naming the offending entry.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.fees import DEFAULT_FEE_SCHEDULES, FeeScheduleError, FeeScheduleSet, load_fee_schedules
from compliance.risk import RiskConfig, RiskConfigError, risk_config_from_mapping
from matching.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    InstrumentConfigError,
    instrument_from_mapping,
    load_instruments,
    validate_instruments,
)
from matching.types import AssetClass, StpMode

if TYPE_CHECKING:
    from hub.fairness import FairnessConfig


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and why."""


class Role(StrEnum):
    PARTICIPANT = "participant"
    OPERATOR = "operator"
    REGULATOR = "regulator"


class ParticipantClass(StrEnum):
    SCALPER = "scalper"
    INSTITUTION = "institution"
    MARKET_MAKER = "market_maker"
    NONE = "none"  # operators and regulators


def hash_token(token: str) -> str:
    """Tokens are configured and compared only as SHA-256 hex digests."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class ParticipantConfig:
    id: str
    role: Role
    participant_class: ParticipantClass
    token_sha256: str
    accounts: tuple[int, ...] = ()
    stp_mode: StpMode = StpMode.CANCEL_INCOMING  # applied when an order leaves STP unspecified


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    port: int = 50051
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_streams: int = 256
    max_concurrent_rpcs: int = 512
    max_workers: int = 64  # the gateway's worker pool: admin, account and ledger calls, session closes
    keepalive_min_ping_interval_ms: int = 10_000
    keepalive_max_ping_strikes: int = 2
    # Objects surviving this long move to the collector's permanent generation, so its pauses stay
    # short (hub.gc_policy); 0 leaves Python's collector as it is.
    gc_freeze_interval_ms: int = 100
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""  # set: mutual TLS, clients must present a certificate from this CA


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitsConfig:
    max_quotes_per_message: int = 500
    # MassQuote messages per participant (token bucket, the gateway's own: replay needs none, since
    # a refused message is journaled as a gateway reject). Quote orders take no order-rate tokens.
    mass_quotes_per_second: int = 500
    mass_quote_burst: int = 500
    client_order_id_max_length: int = 64
    execution_history: int = 100_000  # per participant, for Account.GetExecutions
    market_data_queue: int = 10_000  # updates buffered per subscriber before it must resync


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerConfig:
    url: str = ""  # "" = SQLite in the data directory; else a SQLAlchemy URL (postgresql+psycopg://...)
    durability: str = "process"  # "process": survive a hub crash; "power": fsync every block
    checkpoint_every: int = 4096  # records per block at most
    checkpoint_interval_ms: int = 250  # and at most this long between checkpoints
    origin: str = "hub.local/ledger/v1"  # names the log in signed checkpoints
    key_name: str = "hub.local"
    # Sign every checkpoint with ML-DSA-65 (FIPS 204) too, beside Ed25519: about 0.75 ms a
    # checkpoint here, paid by the batch that carries it (``hub ledger verify --post-quantum``).
    post_quantum: bool = False
    # Where a SQLite ledger's acknowledged batches are inserted into the database: a worker
    # "process" of their own (``ledger.apply_worker``: the inserts stay off the gateway's GIL), or a
    # "thread" of the hub's process.
    applier: str = "process"


@dataclass(frozen=True, kw_only=True, slots=True)
class HubConfig:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    fairness: FairnessConfig = field(default_factory=lambda: _fairness_default())
    fee_schedules: FeeScheduleSet = DEFAULT_FEE_SCHEDULES
    risk: RiskConfig = field(default_factory=RiskConfig)
    engine_implementation: str = ""  # "" follows $HUB_ENGINE, else "cython"
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS
    participants: tuple[ParticipantConfig, ...] = ()
    data_dir: str = "hub-data"

    @staticmethod
    def default() -> HubConfig:
        """Embedded defaults: built-in instruments and development participants.

        The development tokens are public (README); real deployments configure their own.
        """
        return HubConfig(participants=DEV_PARTICIPANTS).validated()

    def with_network(self, **changes: Any) -> HubConfig:
        return replace(self, network=replace(self.network, **changes))

    def validated(self) -> HubConfig:
        try:
            validate_instruments(self.instruments)
        except InstrumentConfigError as exc:
            raise ConfigError(str(exc)) from exc
        _validate_network(self.network)
        _validate_participants(self.participants)
        if self.ledger.durability not in ("process", "power"):
            raise ConfigError(f"ledger.durability {self.ledger.durability!r} must be 'process' or 'power'")
        if self.ledger.applier not in ("process", "thread"):
            raise ConfigError(f"ledger.applier {self.ledger.applier!r} must be 'process' or 'thread'")
        if self.ledger.post_quantum:
            from ledger.signing import mldsa_available

            if not mldsa_available():
                raise ConfigError("ledger.post_quantum needs ML-DSA, which the installed cryptography lacks")
        if self.ledger.checkpoint_every <= 0 or self.ledger.checkpoint_interval_ms <= 0:
            raise ConfigError("ledger.checkpoint_every and ledger.checkpoint_interval_ms must be positive")
        for name in ("max_quotes_per_message", "mass_quotes_per_second", "mass_quote_burst",
                     "client_order_id_max_length", "execution_history",
                     "market_data_queue"):
            if getattr(self.limits, name) <= 0:
                raise ConfigError(f"limits.{name} must be positive")
        return self

    def public_dev_tokens(self) -> list[str]:
        """Participants whose token is the published development one, ``dev-<id>`` (the embedded
        defaults, or a config that copied them): anyone can act as them."""
        return [p.id for p in self.participants if p.token_sha256 == hash_token(f"dev-{p.id}")]

    def participant_by_token_hash(self) -> dict[str, ParticipantConfig]:
        return {p.token_sha256: p for p in self.participants}


def _fairness_default():
    from hub.fairness import FairnessConfig

    return FairnessConfig()


def _dev(pid: str, role: Role, pclass: ParticipantClass, accounts: tuple[int, ...]) -> ParticipantConfig:
    return ParticipantConfig(id=pid, role=role, participant_class=pclass,
                             token_sha256=hash_token(f"dev-{pid}"), accounts=accounts)


#: Development participants; each one's token is ``dev-<id>``.
DEV_PARTICIPANTS: tuple[ParticipantConfig, ...] = (
    _dev("scalper-1", Role.PARTICIPANT, ParticipantClass.SCALPER, (1001,)),
    _dev("scalper-2", Role.PARTICIPANT, ParticipantClass.SCALPER, (1002,)),
    _dev("inst-1", Role.PARTICIPANT, ParticipantClass.INSTITUTION, (2001, 2002)),
    _dev("inst-2", Role.PARTICIPANT, ParticipantClass.INSTITUTION, (2003,)),
    _dev("mm-1", Role.PARTICIPANT, ParticipantClass.MARKET_MAKER, (3001,)),
    _dev("operator", Role.OPERATOR, ParticipantClass.NONE, ()),
    _dev("regulator", Role.REGULATOR, ParticipantClass.NONE, ()),
)


def _validate_network(net: NetworkConfig) -> None:
    if not 0 <= net.port <= 65535:
        raise ConfigError(f"network.port {net.port} is not a TCP port")
    for name in ("max_message_bytes", "max_concurrent_streams", "max_concurrent_rpcs", "max_workers",
                 "keepalive_min_ping_interval_ms", "keepalive_max_ping_strikes"):
        if getattr(net, name) <= 0:
            raise ConfigError(f"network.{name} must be positive")
    if net.gc_freeze_interval_ms < 0:
        raise ConfigError("network.gc_freeze_interval_ms must be 0 (off) or positive")
    if bool(net.tls_cert) != bool(net.tls_key):
        raise ConfigError("network.tls_cert and network.tls_key must be given together")
    if net.tls_client_ca and not net.tls_cert:
        raise ConfigError("network.tls_client_ca (mutual TLS) needs tls_cert and tls_key")
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(net, name)
        if path and not Path(path).is_file():
            raise ConfigError(f"network.{name}: no such file {path!r}")


def _validate_participants(participants: tuple[ParticipantConfig, ...]) -> None:
    ids: set[str] = set()
    hashes: set[str] = set()
    accounts: dict[int, str] = {}
    for p in participants:
        where = f"participant {p.id!r}"
        if not p.id or len(p.id) > 64 or not p.id.isprintable():
            raise ConfigError(f"{where}: id must be 1-64 printable characters")
        if p.id in ids:
            raise ConfigError(f"{where}: duplicate id")
        ids.add(p.id)
        if len(p.token_sha256) != 64 or any(c not in "0123456789abcdef" for c in p.token_sha256):
            raise ConfigError(f"{where}: token_sha256 must be 64 lowercase hex characters")
        if p.token_sha256 in hashes:
            raise ConfigError(f"{where}: shares its token with another participant")
        hashes.add(p.token_sha256)
        if p.role == Role.PARTICIPANT:
            if p.participant_class == ParticipantClass.NONE:
                raise ConfigError(f"{where}: a trading participant needs a class")
            if not p.accounts:
                raise ConfigError(f"{where}: a trading participant needs at least one account")
        elif p.accounts:
            raise ConfigError(f"{where}: role {p.role.value} cannot hold trading accounts")
        for account in p.accounts:
            if not 1 <= account < 2**62:
                raise ConfigError(f"{where}: account {account} out of range")
            if account in accounts:
                raise ConfigError(f"{where}: account {account} already belongs to {accounts[account]!r}")
            accounts[account] = p.id


# -- LOADING ----------------------------------------------------------------------------------


def _typed(section: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"[{section}] unknown keys {sorted(unknown)}")
    for key, value in raw.items():
        expected = type(getattr(cls(), key))
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
            raise ConfigError(f"[{section}] {key} must be {expected.__name__}, got {value!r}")
    return cls(**raw)


def _participant(raw: Any) -> ParticipantConfig:
    if not isinstance(raw, dict):
        raise ConfigError("[[participant]] entries must be tables")
    pid = raw.get("id", "<no id>")
    allowed = {"id", "role", "class", "token_sha256", "accounts", "stp_mode"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"participant {pid!r}: unknown keys {sorted(unknown)}")
    try:
        role = Role(raw.get("role", "participant"))
        pclass = ParticipantClass(raw.get("class", "none"))
        stp = StpMode[str(raw.get("stp_mode", "cancel_incoming")).upper()]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"participant {pid!r}: {exc}") from None
    accounts = raw.get("accounts", [])
    if not isinstance(accounts, list) or any(isinstance(a, bool) or not isinstance(a, int) for a in accounts):
        raise ConfigError(f"participant {pid!r}: accounts must be a list of integers")
    for key in ("id", "token_sha256"):
        if not isinstance(raw.get(key), str):
            raise ConfigError(f"participant {pid!r}: {key} is required and must be a string")
    return ParticipantConfig(id=raw["id"], role=role, participant_class=pclass,
                             token_sha256=raw["token_sha256"].lower(), accounts=tuple(accounts),
                             stp_mode=stp)


def _fairness(raw: Any) -> FairnessConfig:
    from hub.fairness import FairnessConfig, Preset, RestingMode

    if not isinstance(raw, dict):
        raise ConfigError("[fairness] must be a table")
    allowed = {"preset", "min_resting_ns", "min_resting_mode", "latency_floor_ns", "post_only_exempt_min_quantity",
               "batching", "batch_seed"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"[fairness] unknown keys {sorted(unknown)}")
    try:
        batching = {}
        for name, window in raw.get("batching", {}).items():
            if (not isinstance(window, list) or len(window) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in window)):
                raise ConfigError(f"[fairness.batching] {name} must be [min_ns, max_ns]")
            batching[AssetClass[name.upper()]] = (window[0], window[1])
        ints = {k: raw[k] for k in ("min_resting_ns", "latency_floor_ns", "post_only_exempt_min_quantity", "batch_seed")
                if k in raw}
        for k, v in ints.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"[fairness] {k} must be an integer")
        return FairnessConfig(preset=Preset(raw.get("preset", "participant_class")),
                              min_resting_mode=RestingMode(raw.get("min_resting_mode", "reject")),
                              batching=batching, **ints).validated()
    except (KeyError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"[fairness] {exc}") from None


def _risk(raw: Any, instruments: tuple[Instrument, ...]) -> RiskConfig:
    try:
        return risk_config_from_mapping(raw).validated(instruments) if raw else RiskConfig()
    except (RiskConfigError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"[risk] {exc}") from None


def load_config(path: str | Path) -> HubConfig:
    """Read a TOML config file. Instruments come from ``[[instrument]]`` tables, or from
    ``instruments_file`` (relative to the config file), or default to the built-in set."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    allowed = {"network", "limits", "ledger", "fairness", "fees_file", "risk", "engine_implementation",
               "instrument", "instruments_file", "participant", "data_dir"}
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}")
    try:
        if "instrument" in doc and "instruments_file" in doc:
            raise ConfigError("give either [[instrument]] tables or instruments_file, not both")
        if "instrument" in doc:
            instruments = tuple(instrument_from_mapping(t) for t in doc["instrument"])
        elif "instruments_file" in doc:
            instruments = load_instruments(path.parent / doc["instruments_file"])
        else:
            instruments = DEFAULT_INSTRUMENTS
    except InstrumentConfigError as exc:
        raise ConfigError(str(exc)) from exc
    if "participant" not in doc:
        raise ConfigError(f"{path}: at least one [[participant]] is required")
    try:
        fee_schedules = load_fee_schedules(path.parent / doc["fees_file"]) if "fees_file" in doc else DEFAULT_FEE_SCHEDULES
    except (FeeScheduleError, OSError) as exc:
        raise ConfigError(f"fees_file: {exc}") from exc
    impl = doc.get("engine_implementation", "")
    if impl not in ("", "cython", "reference"):
        raise ConfigError(f"engine_implementation {impl!r} must be 'cython' or 'reference'")
    config = HubConfig(
        network=_typed("network", NetworkConfig, doc.get("network", {})),
        limits=_typed("limits", LimitsConfig, doc.get("limits", {})),
        ledger=_typed("ledger", LedgerConfig, doc.get("ledger", {})),
        fairness=_fairness(doc.get("fairness", {})),
        fee_schedules=fee_schedules,
        risk=_risk(doc.get("risk", {}), instruments),
        engine_implementation=impl,
        instruments=instruments,
        participants=tuple(_participant(p) for p in doc["participant"]),
        data_dir=str(doc.get("data_dir", "hub-data")),
    )
    return config.validated()
