import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from server.generated.rivertrace.v1 import incidents_pb2 as _incidents_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_RETRYING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DEAD: _ClassVar[DeliveryState]
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_RETRYING: DeliveryState
DELIVERY_STATE_DEAD: DeliveryState

class Alert(_message.Message):
    __slots__ = ("alert_id", "incident_id", "sequence", "created_at", "incident", "summary", "summary_zh", "cap_xml", "kind")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_ZH_FIELD_NUMBER: _ClassVar[int]
    CAP_XML_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    incident_id: str
    sequence: int
    created_at: _timestamp_pb2.Timestamp
    incident: _incidents_pb2.Incident
    summary: str
    summary_zh: str
    cap_xml: str
    kind: str
    def __init__(self, alert_id: _Optional[str] = ..., incident_id: _Optional[str] = ..., sequence: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., incident: _Optional[_Union[_incidents_pb2.Incident, _Mapping]] = ..., summary: _Optional[str] = ..., summary_zh: _Optional[str] = ..., cap_xml: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class GetAlertRequest(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    def __init__(self, alert_id: _Optional[str] = ...) -> None: ...

class DeliverAck(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    def __init__(self, alert_id: _Optional[str] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("id", "grpc_address", "webhook_url", "network", "departments", "created_at", "tls", "owner")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    id: str
    grpc_address: str
    webhook_url: str
    network: str
    departments: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    tls: bool
    owner: str
    def __init__(self, id: _Optional[str] = ..., grpc_address: _Optional[str] = ..., webhook_url: _Optional[str] = ..., network: _Optional[str] = ..., departments: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tls: _Optional[bool] = ..., owner: _Optional[str] = ...) -> None: ...

class RegisterTargetRequest(_message.Message):
    __slots__ = ("id", "grpc_address", "webhook_url", "network", "departments", "webhook_secret", "tls")
    ID_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENTS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRET_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    id: str
    grpc_address: str
    webhook_url: str
    network: str
    departments: _containers.RepeatedScalarFieldContainer[str]
    webhook_secret: str
    tls: bool
    def __init__(self, id: _Optional[str] = ..., grpc_address: _Optional[str] = ..., webhook_url: _Optional[str] = ..., network: _Optional[str] = ..., departments: _Optional[_Iterable[str]] = ..., webhook_secret: _Optional[str] = ..., tls: _Optional[bool] = ...) -> None: ...

class RemoveTargetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RemoveTargetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTargetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTargetsResponse(_message.Message):
    __slots__ = ("targets",)
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    def __init__(self, targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("alert_id", "target_id", "incident_id", "sequence", "state", "attempts", "next_attempt", "last_error", "delivered_at")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    target_id: str
    incident_id: str
    sequence: int
    state: DeliveryState
    attempts: int
    next_attempt: _timestamp_pb2.Timestamp
    last_error: str
    delivered_at: _timestamp_pb2.Timestamp
    def __init__(self, alert_id: _Optional[str] = ..., target_id: _Optional[str] = ..., incident_id: _Optional[str] = ..., sequence: _Optional[int] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., attempts: _Optional[int] = ..., next_attempt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("incident_id", "target_id", "state")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    target_id: str
    state: DeliveryState
    def __init__(self, incident_id: _Optional[str] = ..., target_id: _Optional[str] = ..., state: _Optional[_Union[DeliveryState, str]] = ...) -> None: ...

class ReplayDeliveriesRequest(_message.Message):
    __slots__ = ("target_id", "alert_id", "incident_id")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    alert_id: str
    incident_id: str
    def __init__(self, target_id: _Optional[str] = ..., alert_id: _Optional[str] = ..., incident_id: _Optional[str] = ...) -> None: ...

class ReplayDeliveriesResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: int
    def __init__(self, replayed: _Optional[int] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...
