import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from server.generated.rivertrace.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutNetworkRequest(_message.Message):
    __slots__ = ("name", "document_json", "geopackage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    GEOPACKAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    document_json: str
    geopackage: bytes
    def __init__(self, name: _Optional[str] = ..., document_json: _Optional[str] = ..., geopackage: _Optional[bytes] = ...) -> None: ...

class PutNetworkResponse(_message.Message):
    __slots__ = ("name", "version", "warnings", "stored_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Problem]
    stored_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Problem, _Mapping]]] = ..., stored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetNetworkRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetNetworkResponse(_message.Message):
    __slots__ = ("name", "version", "document_json", "stored_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    document_json: str
    stored_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., document_json: _Optional[str] = ..., stored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidateNetworkRequest(_message.Message):
    __slots__ = ("document_json",)
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    document_json: str
    def __init__(self, document_json: _Optional[str] = ...) -> None: ...

class ValidateNetworkResponse(_message.Message):
    __slots__ = ("valid", "errors", "warnings")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Problem]
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Problem]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.Problem, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Problem, _Mapping]]] = ...) -> None: ...

class ReachFlow(_message.Message):
    __slots__ = ("reach_id", "discharge_m3s")
    REACH_ID_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_M3S_FIELD_NUMBER: _ClassVar[int]
    reach_id: str
    discharge_m3s: float
    def __init__(self, reach_id: _Optional[str] = ..., discharge_m3s: _Optional[float] = ...) -> None: ...

class StructureRelease(_message.Message):
    __slots__ = ("structure_id", "release_m3s")
    STRUCTURE_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_M3S_FIELD_NUMBER: _ClassVar[int]
    structure_id: str
    release_m3s: float
    def __init__(self, structure_id: _Optional[str] = ..., release_m3s: _Optional[float] = ...) -> None: ...

class UpdateFlowsRequest(_message.Message):
    __slots__ = ("name", "reach_flows", "structure_releases")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REACH_FLOWS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_RELEASES_FIELD_NUMBER: _ClassVar[int]
    name: str
    reach_flows: _containers.RepeatedCompositeFieldContainer[ReachFlow]
    structure_releases: _containers.RepeatedCompositeFieldContainer[StructureRelease]
    def __init__(self, name: _Optional[str] = ..., reach_flows: _Optional[_Iterable[_Union[ReachFlow, _Mapping]]] = ..., structure_releases: _Optional[_Iterable[_Union[StructureRelease, _Mapping]]] = ...) -> None: ...

class Feature(_message.Message):
    __slots__ = ("kind", "id", "name", "location", "attributes_json")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_JSON_FIELD_NUMBER: _ClassVar[int]
    kind: _common_pb2.FeatureKind
    id: str
    name: str
    location: _common_pb2.Location
    attributes_json: str
    def __init__(self, kind: _Optional[_Union[_common_pb2.FeatureKind, str]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., attributes_json: _Optional[str] = ...) -> None: ...

class ListFeaturesRequest(_message.Message):
    __slots__ = ("name", "version", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    kind: _common_pb2.FeatureKind
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[_Union[_common_pb2.FeatureKind, str]] = ...) -> None: ...

class ListFeaturesResponse(_message.Message):
    __slots__ = ("features",)
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedCompositeFieldContainer[Feature]
    def __init__(self, features: _Optional[_Iterable[_Union[Feature, _Mapping]]] = ...) -> None: ...
