from hub.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ("symbol", "depth")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    depth: int
    def __init__(self, symbol: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class PriceLevel(_message.Message):
    __slots__ = ("price", "quantity")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    price: int
    quantity: int
    def __init__(self, price: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class BookSnapshot(_message.Message):
    __slots__ = ("symbol", "md_sequence", "bids", "asks", "halted")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    md_sequence: int
    bids: _containers.RepeatedCompositeFieldContainer[PriceLevel]
    asks: _containers.RepeatedCompositeFieldContainer[PriceLevel]
    halted: bool
    def __init__(self, symbol: _Optional[str] = ..., md_sequence: _Optional[int] = ..., bids: _Optional[_Iterable[_Union[PriceLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[PriceLevel, _Mapping]]] = ..., halted: _Optional[bool] = ...) -> None: ...

class BookDeltaUpdate(_message.Message):
    __slots__ = ("side", "price", "quantity")
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    side: _common_pb2.Side
    price: int
    quantity: int
    def __init__(self, side: _Optional[_Union[_common_pb2.Side, str]] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class TradeUpdate(_message.Message):
    __slots__ = ("trade_id", "price", "quantity", "aggressor_side")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_SIDE_FIELD_NUMBER: _ClassVar[int]
    trade_id: int
    price: int
    quantity: int
    aggressor_side: _common_pb2.Side
    def __init__(self, trade_id: _Optional[int] = ..., price: _Optional[int] = ..., quantity: _Optional[int] = ..., aggressor_side: _Optional[_Union[_common_pb2.Side, str]] = ...) -> None: ...

class TopOfBookUpdate(_message.Message):
    __slots__ = ("bid_price", "bid_quantity", "ask_price", "ask_quantity")
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int
    def __init__(self, bid_price: _Optional[int] = ..., bid_quantity: _Optional[int] = ..., ask_price: _Optional[int] = ..., ask_quantity: _Optional[int] = ...) -> None: ...

class ResyncNotice(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class TradingStatusUpdate(_message.Message):
    __slots__ = ("halted",)
    HALTED_FIELD_NUMBER: _ClassVar[int]
    halted: bool
    def __init__(self, halted: _Optional[bool] = ...) -> None: ...

class MarketDataUpdate(_message.Message):
    __slots__ = ("symbol", "md_sequence", "sequence", "hub_time_ns", "snapshot", "delta", "trade", "top", "resync", "status")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HUB_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TRADE_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    md_sequence: int
    sequence: int
    hub_time_ns: int
    snapshot: BookSnapshot
    delta: BookDeltaUpdate
    trade: TradeUpdate
    top: TopOfBookUpdate
    resync: ResyncNotice
    status: TradingStatusUpdate
    def __init__(self, symbol: _Optional[str] = ..., md_sequence: _Optional[int] = ..., sequence: _Optional[int] = ..., hub_time_ns: _Optional[int] = ..., snapshot: _Optional[_Union[BookSnapshot, _Mapping]] = ..., delta: _Optional[_Union[BookDeltaUpdate, _Mapping]] = ..., trade: _Optional[_Union[TradeUpdate, _Mapping]] = ..., top: _Optional[_Union[TopOfBookUpdate, _Mapping]] = ..., resync: _Optional[_Union[ResyncNotice, _Mapping]] = ..., status: _Optional[_Union[TradingStatusUpdate, _Mapping]] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InstrumentInfo(_message.Message):
    __slots__ = ("symbol", "asset_class", "currency", "price_scale", "quantity_scale", "tick_size", "lot_size", "min_quantity", "max_quantity", "max_notional", "contract_multiplier", "reference_price")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ASSET_CLASS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICE_SCALE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_SCALE_FIELD_NUMBER: _ClassVar[int]
    TICK_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    asset_class: _common_pb2.AssetClass
    currency: str
    price_scale: int
    quantity_scale: int
    tick_size: int
    lot_size: int
    min_quantity: int
    max_quantity: int
    max_notional: int
    contract_multiplier: int
    reference_price: int
    def __init__(self, symbol: _Optional[str] = ..., asset_class: _Optional[_Union[_common_pb2.AssetClass, str]] = ..., currency: _Optional[str] = ..., price_scale: _Optional[int] = ..., quantity_scale: _Optional[int] = ..., tick_size: _Optional[int] = ..., lot_size: _Optional[int] = ..., min_quantity: _Optional[int] = ..., max_quantity: _Optional[int] = ..., max_notional: _Optional[int] = ..., contract_multiplier: _Optional[int] = ..., reference_price: _Optional[int] = ...) -> None: ...

class InstrumentList(_message.Message):
    __slots__ = ("instruments",)
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[InstrumentInfo]
    def __init__(self, instruments: _Optional[_Iterable[_Union[InstrumentInfo, _Mapping]]] = ...) -> None: ...
