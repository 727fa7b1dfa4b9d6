from hub.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NewOrderRequest(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "order_type", "time_in_force", "price", "quantity", "display_quantity", "post_only", "stp_mode", "account")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    STP_MODE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: _common_pb2.Side
    order_type: _common_pb2.OrderType
    time_in_force: _common_pb2.TimeInForce
    price: int
    quantity: int
    display_quantity: int
    post_only: bool
    stp_mode: _common_pb2.StpMode
    account: int
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., order_type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ..., display_quantity: _Optional[int] = ..., post_only: _Optional[bool] = ..., stp_mode: _Optional[_Union[_common_pb2.StpMode, str]] = ..., account: _Optional[int] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("symbol", "order_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    order_id: int
    def __init__(self, symbol: _Optional[str] = ..., order_id: _Optional[int] = ...) -> None: ...

class ReplaceRequest(_message.Message):
    __slots__ = ("symbol", "order_id", "price", "quantity")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    order_id: int
    price: int
    quantity: int
    def __init__(self, symbol: _Optional[str] = ..., order_id: _Optional[int] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class OrderAck(_message.Message):
    __slots__ = ("accepted", "reject_reason", "reject_text", "order_id", "client_order_id", "sequence", "hub_time_ns", "executions")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_TEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HUB_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reject_reason: _common_pb2.RejectReason
    reject_text: str
    order_id: int
    client_order_id: str
    sequence: int
    hub_time_ns: int
    executions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutionReport]
    def __init__(self, accepted: _Optional[bool] = ..., reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ..., reject_text: _Optional[str] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[str] = ..., sequence: _Optional[int] = ..., hub_time_ns: _Optional[int] = ..., executions: _Optional[_Iterable[_Union[_common_pb2.ExecutionReport, _Mapping]]] = ...) -> None: ...

class MassCancelRequest(_message.Message):
    __slots__ = ("symbol", "account")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    account: int
    def __init__(self, symbol: _Optional[str] = ..., account: _Optional[int] = ...) -> None: ...

class MassCancelAck(_message.Message):
    __slots__ = ("accepted", "reject_reason", "reject_text", "cancelled_count")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_TEXT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reject_reason: _common_pb2.RejectReason
    reject_text: str
    cancelled_count: int
    def __init__(self, accepted: _Optional[bool] = ..., reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ..., reject_text: _Optional[str] = ..., cancelled_count: _Optional[int] = ...) -> None: ...

class MassQuoteRequest(_message.Message):
    __slots__ = ("quotes", "account")
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    quotes: _containers.RepeatedCompositeFieldContainer[Quote]
    account: int
    def __init__(self, quotes: _Optional[_Iterable[_Union[Quote, _Mapping]]] = ..., account: _Optional[int] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "bid_price", "bid_quantity", "ask_price", "ask_quantity")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int
    def __init__(self, symbol: _Optional[str] = ..., bid_price: _Optional[int] = ..., bid_quantity: _Optional[int] = ..., ask_price: _Optional[int] = ..., ask_quantity: _Optional[int] = ...) -> None: ...

class QuoteAck(_message.Message):
    __slots__ = ("symbol", "bid_order_id", "bid_reject_reason", "ask_order_id", "ask_reject_reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BID_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    BID_REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    ASK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ASK_REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    bid_order_id: int
    bid_reject_reason: _common_pb2.RejectReason
    ask_order_id: int
    ask_reject_reason: _common_pb2.RejectReason
    def __init__(self, symbol: _Optional[str] = ..., bid_order_id: _Optional[int] = ..., bid_reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ..., ask_order_id: _Optional[int] = ..., ask_reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ...) -> None: ...

class MassQuoteAck(_message.Message):
    __slots__ = ("accepted", "reject_reason", "reject_text", "quotes", "executions")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_TEXT_FIELD_NUMBER: _ClassVar[int]
    QUOTES_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reject_reason: _common_pb2.RejectReason
    reject_text: str
    quotes: _containers.RepeatedCompositeFieldContainer[QuoteAck]
    executions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutionReport]
    def __init__(self, accepted: _Optional[bool] = ..., reject_reason: _Optional[_Union[_common_pb2.RejectReason, str]] = ..., reject_text: _Optional[str] = ..., quotes: _Optional[_Iterable[_Union[QuoteAck, _Mapping]]] = ..., executions: _Optional[_Iterable[_Union[_common_pb2.ExecutionReport, _Mapping]]] = ...) -> None: ...

class SessionOptions(_message.Message):
    __slots__ = ("cancel_on_disconnect",)
    CANCEL_ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    cancel_on_disconnect: bool
    def __init__(self, cancel_on_disconnect: _Optional[bool] = ...) -> None: ...

class SessionOpened(_message.Message):
    __slots__ = ("session_id", "participant_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    participant_id: str
    def __init__(self, session_id: _Optional[str] = ..., participant_id: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("client_time_ns",)
    CLIENT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    client_time_ns: int
    def __init__(self, client_time_ns: _Optional[int] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("request_id", "open", "new_order", "cancel", "replace", "mass_cancel", "mass_quote", "heartbeat")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    NEW_ORDER_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    MASS_CANCEL_FIELD_NUMBER: _ClassVar[int]
    MASS_QUOTE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    open: SessionOptions
    new_order: NewOrderRequest
    cancel: CancelRequest
    replace: ReplaceRequest
    mass_cancel: MassCancelRequest
    mass_quote: MassQuoteRequest
    heartbeat: Heartbeat
    def __init__(self, request_id: _Optional[int] = ..., open: _Optional[_Union[SessionOptions, _Mapping]] = ..., new_order: _Optional[_Union[NewOrderRequest, _Mapping]] = ..., cancel: _Optional[_Union[CancelRequest, _Mapping]] = ..., replace: _Optional[_Union[ReplaceRequest, _Mapping]] = ..., mass_cancel: _Optional[_Union[MassCancelRequest, _Mapping]] = ..., mass_quote: _Optional[_Union[MassQuoteRequest, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("request_id", "opened", "order_ack", "mass_cancel_ack", "mass_quote_ack", "execution", "heartbeat")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    ORDER_ACK_FIELD_NUMBER: _ClassVar[int]
    MASS_CANCEL_ACK_FIELD_NUMBER: _ClassVar[int]
    MASS_QUOTE_ACK_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    opened: SessionOpened
    order_ack: OrderAck
    mass_cancel_ack: MassCancelAck
    mass_quote_ack: MassQuoteAck
    execution: _common_pb2.ExecutionReport
    heartbeat: Heartbeat
    def __init__(self, request_id: _Optional[int] = ..., opened: _Optional[_Union[SessionOpened, _Mapping]] = ..., order_ack: _Optional[_Union[OrderAck, _Mapping]] = ..., mass_cancel_ack: _Optional[_Union[MassCancelAck, _Mapping]] = ..., mass_quote_ack: _Optional[_Union[MassQuoteAck, _Mapping]] = ..., execution: _Optional[_Union[_common_pb2.ExecutionReport, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...
