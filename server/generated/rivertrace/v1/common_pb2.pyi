import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeatureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_KIND_UNSPECIFIED: _ClassVar[FeatureKind]
    FEATURE_KIND_STATION: _ClassVar[FeatureKind]
    FEATURE_KIND_DISCHARGER: _ClassVar[FeatureKind]
    FEATURE_KIND_INTAKE: _ClassVar[FeatureKind]
    FEATURE_KIND_STRUCTURE: _ClassVar[FeatureKind]
    FEATURE_KIND_SITE: _ClassVar[FeatureKind]
FEATURE_KIND_UNSPECIFIED: FeatureKind
FEATURE_KIND_STATION: FeatureKind
FEATURE_KIND_DISCHARGER: FeatureKind
FEATURE_KIND_INTAKE: FeatureKind
FEATURE_KIND_STRUCTURE: FeatureKind
FEATURE_KIND_SITE: FeatureKind

class Location(_message.Message):
    __slots__ = ("reach_id", "chainage_m")
    REACH_ID_FIELD_NUMBER: _ClassVar[int]
    CHAINAGE_M_FIELD_NUMBER: _ClassVar[int]
    reach_id: str
    chainage_m: float
    def __init__(self, reach_id: _Optional[str] = ..., chainage_m: _Optional[float] = ...) -> None: ...

class Problem(_message.Message):
    __slots__ = ("severity", "element", "id", "field", "message")
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    ELEMENT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    severity: str
    element: str
    id: str
    field: str
    message: str
    def __init__(self, severity: _Optional[str] = ..., element: _Optional[str] = ..., id: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TimeWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
