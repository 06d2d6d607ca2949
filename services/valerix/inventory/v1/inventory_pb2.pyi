from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReserveOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVE_OUTCOME_UNSPECIFIED: _ClassVar[ReserveOutcome]
    RESERVE_OUTCOME_RESERVED: _ClassVar[ReserveOutcome]
    RESERVE_OUTCOME_INSUFFICIENT_STOCK: _ClassVar[ReserveOutcome]
    RESERVE_OUTCOME_UNKNOWN_PRODUCT: _ClassVar[ReserveOutcome]
    RESERVE_OUTCOME_RELEASED: _ClassVar[ReserveOutcome]
RESERVE_OUTCOME_UNSPECIFIED: ReserveOutcome
RESERVE_OUTCOME_RESERVED: ReserveOutcome
RESERVE_OUTCOME_INSUFFICIENT_STOCK: ReserveOutcome
RESERVE_OUTCOME_UNKNOWN_PRODUCT: ReserveOutcome
RESERVE_OUTCOME_RELEASED: ReserveOutcome

class StockLine(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    quantity: int
    def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReserveStockRequest(_message.Message):
    __slots__ = ("order_id", "lines")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[StockLine]
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[StockLine, _Mapping]]] = ...) -> None: ...

class LineShortage(_message.Message):
    __slots__ = ("product_id", "requested", "available")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    requested: int
    available: int
    def __init__(self, product_id: _Optional[str] = ..., requested: _Optional[int] = ..., available: _Optional[int] = ...) -> None: ...

class ReserveStockResponse(_message.Message):
    __slots__ = ("success", "outcome", "reservation_id", "message", "replayed", "shortages", "remaining_stock")
    class RemainingStockEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SHORTAGES_FIELD_NUMBER: _ClassVar[int]
    REMAINING_STOCK_FIELD_NUMBER: _ClassVar[int]
    success: bool
    outcome: ReserveOutcome
    reservation_id: str
    message: str
    replayed: bool
    shortages: _containers.RepeatedCompositeFieldContainer[LineShortage]
    remaining_stock: _containers.ScalarMap[str, int]
    def __init__(self, success: _Optional[bool] = ..., outcome: _Optional[_Union[ReserveOutcome, str]] = ..., reservation_id: _Optional[str] = ..., message: _Optional[str] = ..., replayed: _Optional[bool] = ..., shortages: _Optional[_Iterable[_Union[LineShortage, _Mapping]]] = ..., remaining_stock: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ReserveBatch(_message.Message):
    __slots__ = ("batch_id", "orders")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    orders: _containers.RepeatedCompositeFieldContainer[ReserveStockRequest]
    def __init__(self, batch_id: _Optional[int] = ..., orders: _Optional[_Iterable[_Union[ReserveStockRequest, _Mapping]]] = ...) -> None: ...

class ReserveResult(_message.Message):
    __slots__ = ("order_id", "response", "error_code", "error_message")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    response: ReserveStockResponse
    error_code: int
    error_message: str
    def __init__(self, order_id: _Optional[str] = ..., response: _Optional[_Union[ReserveStockResponse, _Mapping]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class ReserveResults(_message.Message):
    __slots__ = ("batch_id", "results")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    results: _containers.RepeatedCompositeFieldContainer[ReserveResult]
    def __init__(self, batch_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ReserveResult, _Mapping]]] = ...) -> None: ...

class ReleaseStockRequest(_message.Message):
    __slots__ = ("order_id", "reason")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    reason: str
    def __init__(self, order_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseStockResponse(_message.Message):
    __slots__ = ("released", "message")
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    released: bool
    message: str
    def __init__(self, released: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class CheckStockRequest(_message.Message):
    __slots__ = ("product_ids",)
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, product_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ProductStock(_message.Message):
    __slots__ = ("product_id", "name", "stock", "price_cents")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    name: str
    stock: int
    price_cents: int
    def __init__(self, product_id: _Optional[str] = ..., name: _Optional[str] = ..., stock: _Optional[int] = ..., price_cents: _Optional[int] = ...) -> None: ...

class CheckStockResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[ProductStock]
    def __init__(self, products: _Optional[_Iterable[_Union[ProductStock, _Mapping]]] = ...) -> None: ...
