import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from server.generated.rivertrace.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reading(_message.Message):
    __slots__ = ("station_id", "parameter", "time", "value", "unit", "flag")
    STATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    station_id: str
    parameter: str
    time: _timestamp_pb2.Timestamp
    value: float
    unit: str
    flag: str
    def __init__(self, station_id: _Optional[str] = ..., parameter: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., unit: _Optional[str] = ..., flag: _Optional[str] = ...) -> None: ...

class ReadingBatch(_message.Message):
    __slots__ = ("network", "batch_id", "readings")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    network: str
    batch_id: int
    readings: _containers.RepeatedCompositeFieldContainer[Reading]
    def __init__(self, network: _Optional[str] = ..., batch_id: _Optional[int] = ..., readings: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ...) -> None: ...

class IngestAck(_message.Message):
    __slots__ = ("batch_id", "stored", "duplicates", "rejected")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    stored: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[_common_pb2.Problem]
    def __init__(self, batch_id: _Optional[int] = ..., stored: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[_common_pb2.Problem, _Mapping]]] = ...) -> None: ...

class OperationsState(_message.Message):
    __slots__ = ("discharger_id", "time", "production_on", "treatment_on", "effluent_exceedance")
    DISCHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRODUCTION_ON_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_ON_FIELD_NUMBER: _ClassVar[int]
    EFFLUENT_EXCEEDANCE_FIELD_NUMBER: _ClassVar[int]
    discharger_id: str
    time: _timestamp_pb2.Timestamp
    production_on: bool
    treatment_on: bool
    effluent_exceedance: bool
    def __init__(self, discharger_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., production_on: _Optional[bool] = ..., treatment_on: _Optional[bool] = ..., effluent_exceedance: _Optional[bool] = ...) -> None: ...

class ReportOperationsRequest(_message.Message):
    __slots__ = ("network", "states")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    network: str
    states: _containers.RepeatedCompositeFieldContainer[OperationsState]
    def __init__(self, network: _Optional[str] = ..., states: _Optional[_Iterable[_Union[OperationsState, _Mapping]]] = ...) -> None: ...

class ReportOperationsResponse(_message.Message):
    __slots__ = ("stored", "rejected")
    STORED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    rejected: _containers.RepeatedCompositeFieldContainer[_common_pb2.Problem]
    def __init__(self, stored: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[_common_pb2.Problem, _Mapping]]] = ...) -> None: ...

class ListReadingsRequest(_message.Message):
    __slots__ = ("network", "station_id", "parameter", "window")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    network: str
    station_id: str
    parameter: str
    window: _common_pb2.TimeWindow
    def __init__(self, network: _Optional[str] = ..., station_id: _Optional[str] = ..., parameter: _Optional[str] = ..., window: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ...) -> None: ...

class ListReadingsResponse(_message.Message):
    __slots__ = ("readings",)
    READINGS_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[Reading]
    def __init__(self, readings: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ...) -> None: ...
