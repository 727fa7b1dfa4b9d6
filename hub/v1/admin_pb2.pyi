from hub.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KillScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KILL_SCOPE_UNSPECIFIED: _ClassVar[KillScope]
    KILL_HUB: _ClassVar[KillScope]
    KILL_ASSET_CLASS: _ClassVar[KillScope]
    KILL_PARTICIPANT: _ClassVar[KillScope]
KILL_SCOPE_UNSPECIFIED: KillScope
KILL_HUB: KillScope
KILL_ASSET_CLASS: KillScope
KILL_PARTICIPANT: KillScope

class KillRequest(_message.Message):
    __slots__ = ("scope", "asset_class", "participant_id", "reason")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ASSET_CLASS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    scope: KillScope
    asset_class: _common_pb2.AssetClass
    participant_id: str
    reason: str
    def __init__(self, scope: _Optional[_Union[KillScope, str]] = ..., asset_class: _Optional[_Union[_common_pb2.AssetClass, str]] = ..., participant_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PositionLimitRequest(_message.Message):
    __slots__ = ("participant_id", "symbol", "base_limit")
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BASE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    participant_id: str
    symbol: str
    base_limit: int
    def __init__(self, participant_id: _Optional[str] = ..., symbol: _Optional[str] = ..., base_limit: _Optional[int] = ...) -> None: ...

class RevenueRequest(_message.Message):
    __slots__ = ("month",)
    MONTH_FIELD_NUMBER: _ClassVar[int]
    month: str
    def __init__(self, month: _Optional[str] = ...) -> None: ...

class Revenue(_message.Message):
    __slots__ = ("month", "text", "json")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    month: str
    text: str
    json: str
    def __init__(self, month: _Optional[str] = ..., text: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class TradingScope(_message.Message):
    __slots__ = ("symbol", "asset_class")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ASSET_CLASS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    asset_class: _common_pb2.AssetClass
    def __init__(self, symbol: _Optional[str] = ..., asset_class: _Optional[_Union[_common_pb2.AssetClass, str]] = ...) -> None: ...

class AdminAck(_message.Message):
    __slots__ = ("accepted", "reject_reason", "reject_text", "sequence", "affected_orders")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_TEXT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reject_reason: _common_pb2.RejectReason
    reject_text: str
    sequence: int
    affected_orders: int
    def __init__(self, accepted: _Optional[bool] = ..., reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ..., reject_text: _Optional[str] = ..., sequence: _Optional[int] = ..., affected_orders: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EngineStatus(_message.Message):
    __slots__ = ("asset_class", "implementation", "state_digest", "resting_orders", "halted_symbols")
    ASSET_CLASS_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    STATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RESTING_ORDERS_FIELD_NUMBER: _ClassVar[int]
    HALTED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    asset_class: _common_pb2.AssetClass
    implementation: str
    state_digest: str
    resting_orders: int
    halted_symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, asset_class: _Optional[_Union[_common_pb2.AssetClass, str]] = ..., implementation: _Optional[str] = ..., state_digest: _Optional[str] = ..., resting_orders: _Optional[int] = ..., halted_symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class HubStatus(_message.Message):
    __slots__ = ("last_sequence", "hub_time_ns", "state_digest", "engines", "connected_sessions", "market_data_subscribers")
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HUB_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    STATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MARKET_DATA_SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    last_sequence: int
    hub_time_ns: int
    state_digest: str
    engines: _containers.RepeatedCompositeFieldContainer[EngineStatus]
    connected_sessions: int
    market_data_subscribers: int
    def __init__(self, last_sequence: _Optional[int] = ..., hub_time_ns: _Optional[int] = ..., state_digest: _Optional[str] = ..., engines: _Optional[_Iterable[_Union[EngineStatus, _Mapping]]] = ..., connected_sessions: _Optional[int] = ..., market_data_subscribers: _Optional[int] = ...) -> None: ...
