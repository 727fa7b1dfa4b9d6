from hub.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InstrumentLimit(_message.Message):
    __slots__ = ("symbol", "position_limit", "limit_factor_bps", "net_position")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    POSITION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FACTOR_BPS_FIELD_NUMBER: _ClassVar[int]
    NET_POSITION_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    position_limit: int
    limit_factor_bps: int
    net_position: int
    def __init__(self, symbol: _Optional[str] = ..., position_limit: _Optional[int] = ..., limit_factor_bps: _Optional[int] = ..., net_position: _Optional[int] = ...) -> None: ...

class RiskState(_message.Message):
    __slots__ = ("limits", "base_currency", "equity", "initial_requirement", "maintenance_requirement", "margin_call", "reduce_only", "kill_switch", "detail_json")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BASE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    INITIAL_REQUIREMENT_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_REQUIREMENT_FIELD_NUMBER: _ClassVar[int]
    MARGIN_CALL_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    KILL_SWITCH_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    limits: _containers.RepeatedCompositeFieldContainer[InstrumentLimit]
    base_currency: str
    equity: int
    initial_requirement: int
    maintenance_requirement: int
    margin_call: bool
    reduce_only: bool
    kill_switch: bool
    detail_json: str
    def __init__(self, limits: _Optional[_Iterable[_Union[InstrumentLimit, _Mapping]]] = ..., base_currency: _Optional[str] = ..., equity: _Optional[int] = ..., initial_requirement: _Optional[int] = ..., maintenance_requirement: _Optional[int] = ..., margin_call: _Optional[bool] = ..., reduce_only: _Optional[bool] = ..., kill_switch: _Optional[bool] = ..., detail_json: _Optional[str] = ...) -> None: ...

class StatementRequest(_message.Message):
    __slots__ = ("month",)
    MONTH_FIELD_NUMBER: _ClassVar[int]
    month: str
    def __init__(self, month: _Optional[str] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("month", "text", "json")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    month: str
    text: str
    json: str
    def __init__(self, month: _Optional[str] = ..., text: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class OpenOrdersRequest(_message.Message):
    __slots__ = ("symbol", "after_order_id", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    AFTER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    after_order_id: int
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., after_order_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class OpenOrder(_message.Message):
    __slots__ = ("symbol", "order_id", "client_order_id", "account", "side", "price", "leaves_quantity", "display_quantity", "time_in_force")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    LEAVES_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    order_id: int
    client_order_id: str
    account: int
    side: _common_pb2.Side
    price: int
    leaves_quantity: int
    display_quantity: int
    time_in_force: _common_pb2.TimeInForce
    def __init__(self, symbol: _Optional[str] = ..., order_id: _Optional[int] = ..., client_order_id: _Optional[str] = ..., account: _Optional[int] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., price: _Optional[int] = ..., leaves_quantity: _Optional[int] = ..., display_quantity: _Optional[int] = ..., time_in_force: _Optional[_Union[_common_pb2.TimeInForce, str]] = ...) -> None: ...

class OpenOrders(_message.Message):
    __slots__ = ("orders", "more")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OpenOrder]
    more: bool
    def __init__(self, orders: _Optional[_Iterable[_Union[OpenOrder, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class ExecutionsRequest(_message.Message):
    __slots__ = ("after_sequence", "limit", "skip")
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    limit: int
    skip: int
    def __init__(self, after_sequence: _Optional[int] = ..., limit: _Optional[int] = ..., skip: _Optional[int] = ...) -> None: ...

class Executions(_message.Message):
    __slots__ = ("executions", "more")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExecutionReport]
    more: bool
    def __init__(self, executions: _Optional[_Iterable[_Union[_common_pb2.ExecutionReport, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class PositionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "account", "net_quantity", "bought_quantity", "sold_quantity", "net_cost_raw")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NET_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BOUGHT_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SOLD_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    NET_COST_RAW_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    account: int
    net_quantity: int
    bought_quantity: int
    sold_quantity: int
    net_cost_raw: str
    def __init__(self, symbol: _Optional[str] = ..., account: _Optional[int] = ..., net_quantity: _Optional[int] = ..., bought_quantity: _Optional[int] = ..., sold_quantity: _Optional[int] = ..., net_cost_raw: _Optional[str] = ...) -> None: ...

class Positions(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class DropCopyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
