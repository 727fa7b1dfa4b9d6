from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    BUY: _ClassVar[Side]
    SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    LIMIT: _ClassVar[OrderType]
    MARKET: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    GTC: _ClassVar[TimeInForce]
    DAY: _ClassVar[TimeInForce]
    IOC: _ClassVar[TimeInForce]
    FOK: _ClassVar[TimeInForce]

class StpMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STP_MODE_UNSPECIFIED: _ClassVar[StpMode]
    STP_CANCEL_RESTING: _ClassVar[StpMode]
    STP_CANCEL_INCOMING: _ClassVar[StpMode]
    STP_CANCEL_BOTH: _ClassVar[StpMode]
    STP_ALLOW: _ClassVar[StpMode]

class AssetClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_CLASS_UNSPECIFIED: _ClassVar[AssetClass]
    EQUITY: _ClassVar[AssetClass]
    FUTURE: _ClassVar[AssetClass]
    FX: _ClassVar[AssetClass]
    CRYPTO: _ClassVar[AssetClass]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_UNKNOWN_INSTRUMENT: _ClassVar[RejectReason]
    REJECT_INVALID_ORDER_ID: _ClassVar[RejectReason]
    REJECT_DUPLICATE_ORDER_ID: _ClassVar[RejectReason]
    REJECT_INVALID_ACCOUNT: _ClassVar[RejectReason]
    REJECT_INVALID_SIDE: _ClassVar[RejectReason]
    REJECT_INVALID_ORDER_TYPE: _ClassVar[RejectReason]
    REJECT_INVALID_TIME_IN_FORCE: _ClassVar[RejectReason]
    REJECT_INVALID_STP_MODE: _ClassVar[RejectReason]
    REJECT_POST_ONLY_NOT_ALLOWED: _ClassVar[RejectReason]
    REJECT_INVALID_QUANTITY: _ClassVar[RejectReason]
    REJECT_QUANTITY_NOT_LOT_MULTIPLE: _ClassVar[RejectReason]
    REJECT_QUANTITY_BELOW_MIN: _ClassVar[RejectReason]
    REJECT_QUANTITY_ABOVE_MAX: _ClassVar[RejectReason]
    REJECT_INVALID_PRICE: _ClassVar[RejectReason]
    REJECT_PRICE_NOT_ON_TICK: _ClassVar[RejectReason]
    REJECT_NOTIONAL_ABOVE_MAX: _ClassVar[RejectReason]
    REJECT_INVALID_DISPLAY_QUANTITY: _ClassVar[RejectReason]
    REJECT_UNKNOWN_COMMAND: _ClassVar[RejectReason]
    REJECT_UNKNOWN_ORDER: _ClassVar[RejectReason]
    REJECT_POST_ONLY_WOULD_CROSS: _ClassVar[RejectReason]
    REJECT_FOK_NOT_FILLABLE: _ClassVar[RejectReason]
    REJECT_ACCOUNT_NOT_PERMITTED: _ClassVar[RejectReason]
    REJECT_DUPLICATE_CLIENT_ORDER_ID: _ClassVar[RejectReason]
    REJECT_INSTRUMENT_HALTED: _ClassVar[RejectReason]
    REJECT_MISSING_FIELD: _ClassVar[RejectReason]
    REJECT_FIELD_OUT_OF_RANGE: _ClassVar[RejectReason]
    REJECT_TOO_MANY_QUOTES: _ClassVar[RejectReason]
    REJECT_PRICE_BAND: _ClassVar[RejectReason]
    REJECT_ORDER_RATE: _ClassVar[RejectReason]
    REJECT_SESSION_RATE: _ClassVar[RejectReason]
    REJECT_KILL_SWITCH: _ClassVar[RejectReason]
    REJECT_POSITION_LIMIT: _ClassVar[RejectReason]
    REJECT_MARGIN: _ClassVar[RejectReason]
    REJECT_REDUCE_ONLY: _ClassVar[RejectReason]
    REJECT_INSTRUMENT_PAUSED: _ClassVar[RejectReason]
    REJECT_MAX_ORDER_QUANTITY: _ClassVar[RejectReason]
    REJECT_MAX_ORDER_NOTIONAL: _ClassVar[RejectReason]
    REJECT_RISK_UNKNOWN_INSTRUMENT: _ClassVar[RejectReason]
    REJECT_MIN_RESTING_TIME: _ClassVar[RejectReason]

class CancelReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCEL_REASON_UNSPECIFIED: _ClassVar[CancelReason]
    CANCEL_USER_REQUESTED: _ClassVar[CancelReason]
    CANCEL_IMMEDIATE_REMAINDER: _ClassVar[CancelReason]
    CANCEL_SELF_TRADE_PREVENTION: _ClassVar[CancelReason]
    CANCEL_MASS_CANCEL: _ClassVar[CancelReason]
    CANCEL_RISK: _ClassVar[CancelReason]

class ExecType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXEC_TYPE_UNSPECIFIED: _ClassVar[ExecType]
    EXEC_NEW: _ClassVar[ExecType]
    EXEC_REJECTED: _ClassVar[ExecType]
    EXEC_TRADE: _ClassVar[ExecType]
    EXEC_FILLED: _ClassVar[ExecType]
    EXEC_CANCELLED: _ClassVar[ExecType]
    EXEC_EXPIRED: _ClassVar[ExecType]
    EXEC_REPLACED: _ClassVar[ExecType]
SIDE_UNSPECIFIED: Side
BUY: Side
SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
LIMIT: OrderType
MARKET: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
GTC: TimeInForce
DAY: TimeInForce
IOC: TimeInForce
FOK: TimeInForce
STP_MODE_UNSPECIFIED: StpMode
STP_CANCEL_RESTING: StpMode
STP_CANCEL_INCOMING: StpMode
STP_CANCEL_BOTH: StpMode
STP_ALLOW: StpMode
ASSET_CLASS_UNSPECIFIED: AssetClass
EQUITY: AssetClass
FUTURE: AssetClass
FX: AssetClass
CRYPTO: AssetClass
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_UNKNOWN_INSTRUMENT: RejectReason
REJECT_INVALID_ORDER_ID: RejectReason
REJECT_DUPLICATE_ORDER_ID: RejectReason
REJECT_INVALID_ACCOUNT: RejectReason
REJECT_INVALID_SIDE: RejectReason
REJECT_INVALID_ORDER_TYPE: RejectReason
REJECT_INVALID_TIME_IN_FORCE: RejectReason
REJECT_INVALID_STP_MODE: RejectReason
REJECT_POST_ONLY_NOT_ALLOWED: RejectReason
REJECT_INVALID_QUANTITY: RejectReason
REJECT_QUANTITY_NOT_LOT_MULTIPLE: RejectReason
REJECT_QUANTITY_BELOW_MIN: RejectReason
REJECT_QUANTITY_ABOVE_MAX: RejectReason
REJECT_INVALID_PRICE: RejectReason
REJECT_PRICE_NOT_ON_TICK: RejectReason
REJECT_NOTIONAL_ABOVE_MAX: RejectReason
REJECT_INVALID_DISPLAY_QUANTITY: RejectReason
REJECT_UNKNOWN_COMMAND: RejectReason
REJECT_UNKNOWN_ORDER: RejectReason
REJECT_POST_ONLY_WOULD_CROSS: RejectReason
REJECT_FOK_NOT_FILLABLE: RejectReason
REJECT_ACCOUNT_NOT_PERMITTED: RejectReason
REJECT_DUPLICATE_CLIENT_ORDER_ID: RejectReason
REJECT_INSTRUMENT_HALTED: RejectReason
REJECT_MISSING_FIELD: RejectReason
REJECT_FIELD_OUT_OF_RANGE: RejectReason
REJECT_TOO_MANY_QUOTES: RejectReason
REJECT_PRICE_BAND: RejectReason
REJECT_ORDER_RATE: RejectReason
REJECT_SESSION_RATE: RejectReason
REJECT_KILL_SWITCH: RejectReason
REJECT_POSITION_LIMIT: RejectReason
REJECT_MARGIN: RejectReason
REJECT_REDUCE_ONLY: RejectReason
REJECT_INSTRUMENT_PAUSED: RejectReason
REJECT_MAX_ORDER_QUANTITY: RejectReason
REJECT_MAX_ORDER_NOTIONAL: RejectReason
REJECT_RISK_UNKNOWN_INSTRUMENT: RejectReason
REJECT_MIN_RESTING_TIME: RejectReason
CANCEL_REASON_UNSPECIFIED: CancelReason
CANCEL_USER_REQUESTED: CancelReason
CANCEL_IMMEDIATE_REMAINDER: CancelReason
CANCEL_SELF_TRADE_PREVENTION: CancelReason
CANCEL_MASS_CANCEL: CancelReason
CANCEL_RISK: CancelReason
EXEC_TYPE_UNSPECIFIED: ExecType
EXEC_NEW: ExecType
EXEC_REJECTED: ExecType
EXEC_TRADE: ExecType
EXEC_FILLED: ExecType
EXEC_CANCELLED: ExecType
EXEC_EXPIRED: ExecType
EXEC_REPLACED: ExecType

class ExecutionReport(_message.Message):
    __slots__ = ("sequence", "hub_time_ns", "symbol", "order_id", "client_order_id", "account", "exec_type", "side", "price", "leaves_quantity", "last_price", "last_quantity", "trade_id", "aggressor", "cancel_reason", "reject_reason", "fee", "fee_currency", "fee_schedule")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HUB_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    EXEC_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    LEAVES_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FEE_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    hub_time_ns: int
    symbol: str
    order_id: int
    client_order_id: str
    account: int
    exec_type: ExecType
    side: Side
    price: int
    leaves_quantity: int
    last_price: int
    last_quantity: int
    trade_id: int
    aggressor: bool
    cancel_reason: CancelReason
    reject_reason: RejectReason
    fee: int
    fee_currency: str
    fee_schedule: str
    def __init__(self, sequence: _Optional[int] = ..., hub_time_ns: _Optional[int] = ..., symbol: _Optional[str] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[str] = ..., account: _Optional[int] = ..., exec_type: _Optional[_Union[ExecType, str]] = ..., side: _Optional[_Union[Side, str]] = ..., price: _Optional[int] = ..., leaves_quantity: _Optional[int] = ..., last_price: _Optional[int] = ..., last_quantity: _Optional[int] = ..., trade_id: _Optional[int] = ..., aggressor: _Optional[bool] = ..., cancel_reason: _Optional[_Union[CancelReason, str]] = ..., reject_reason: _Optional[_Union[RejectReason, str]] = ..., fee: _Optional[int] = ..., fee_currency: _Optional[str] = ..., fee_schedule: _Optional[str] = ...) -> None: ...
