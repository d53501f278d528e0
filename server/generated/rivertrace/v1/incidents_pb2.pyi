import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from server.generated.rivertrace.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IncidentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_STATE_UNSPECIFIED: _ClassVar[IncidentState]
    INCIDENT_STATE_OPEN: _ClassVar[IncidentState]
    INCIDENT_STATE_TRACED: _ClassVar[IncidentState]
    INCIDENT_STATE_RESPONDING: _ClassVar[IncidentState]
    INCIDENT_STATE_CLOSED: _ClassVar[IncidentState]

class ActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_KIND_UNSPECIFIED: _ClassVar[ActionKind]
    ACTION_KIND_HALT_DISCHARGE: _ClassVar[ActionKind]
    ACTION_KIND_INTERCEPTION: _ClassVar[ActionKind]
    ACTION_KIND_DILUTION_RELEASE: _ClassVar[ActionKind]
    ACTION_KIND_INTAKE_SUSPENSION: _ClassVar[ActionKind]
    ACTION_KIND_MONITORING: _ClassVar[ActionKind]
    ACTION_KIND_NOTIFY: _ClassVar[ActionKind]

class ActionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_STATUS_UNSPECIFIED: _ClassVar[ActionStatus]
    ACTION_STATUS_PENDING: _ClassVar[ActionStatus]
    ACTION_STATUS_ACKNOWLEDGED: _ClassVar[ActionStatus]
    ACTION_STATUS_DONE: _ClassVar[ActionStatus]
    ACTION_STATUS_NOT_FEASIBLE: _ClassVar[ActionStatus]
INCIDENT_STATE_UNSPECIFIED: IncidentState
INCIDENT_STATE_OPEN: IncidentState
INCIDENT_STATE_TRACED: IncidentState
INCIDENT_STATE_RESPONDING: IncidentState
INCIDENT_STATE_CLOSED: IncidentState
ACTION_KIND_UNSPECIFIED: ActionKind
ACTION_KIND_HALT_DISCHARGE: ActionKind
ACTION_KIND_INTERCEPTION: ActionKind
ACTION_KIND_DILUTION_RELEASE: ActionKind
ACTION_KIND_INTAKE_SUSPENSION: ActionKind
ACTION_KIND_MONITORING: ActionKind
ACTION_KIND_NOTIFY: ActionKind
ACTION_STATUS_UNSPECIFIED: ActionStatus
ACTION_STATUS_PENDING: ActionStatus
ACTION_STATUS_ACKNOWLEDGED: ActionStatus
ACTION_STATUS_DONE: ActionStatus
ACTION_STATUS_NOT_FEASIBLE: ActionStatus

class Candidate(_message.Message):
    __slots__ = ("id", "kind", "probability", "distance_m", "travel_time", "release_start", "mass_kg", "rate_kg_s", "evidence", "explanation")
    class EvidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ExplanationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    TRAVEL_TIME_FIELD_NUMBER: _ClassVar[int]
    RELEASE_START_FIELD_NUMBER: _ClassVar[int]
    MASS_KG_FIELD_NUMBER: _ClassVar[int]
    RATE_KG_S_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    probability: float
    distance_m: float
    travel_time: _duration_pb2.Duration
    release_start: _timestamp_pb2.Timestamp
    mass_kg: float
    rate_kg_s: float
    evidence: _containers.ScalarMap[str, float]
    explanation: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., probability: _Optional[float] = ..., distance_m: _Optional[float] = ..., travel_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., release_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mass_kg: _Optional[float] = ..., rate_kg_s: _Optional[float] = ..., evidence: _Optional[_Mapping[str, float]] = ..., explanation: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ReceptorArrival(_message.Message):
    __slots__ = ("id", "kind", "distance_m", "arrival", "peak", "peak_mg_l", "end", "threshold_mg_l", "band")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    PEAK_MG_L_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MG_L_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: _common_pb2.FeatureKind
    distance_m: float
    arrival: _timestamp_pb2.Timestamp
    peak: _timestamp_pb2.Timestamp
    peak_mg_l: float
    end: _timestamp_pb2.Timestamp
    threshold_mg_l: float
    band: ReceptorBand
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.FeatureKind, str]] = ..., distance_m: _Optional[float] = ..., arrival: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., peak: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., peak_mg_l: _Optional[float] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., threshold_mg_l: _Optional[float] = ..., band: _Optional[_Union[ReceptorBand, _Mapping]] = ...) -> None: ...

class TimeQuantiles(_message.Message):
    __slots__ = ("p10", "p50", "p90")
    P10_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    p10: _timestamp_pb2.Timestamp
    p50: _timestamp_pb2.Timestamp
    p90: _timestamp_pb2.Timestamp
    def __init__(self, p10: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., p50: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., p90: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReceptorBand(_message.Message):
    __slots__ = ("arrival", "peak", "end", "p_arrival", "suspend_from", "suspend_until")
    ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    P_ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FROM_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_UNTIL_FIELD_NUMBER: _ClassVar[int]
    arrival: TimeQuantiles
    peak: TimeQuantiles
    end: TimeQuantiles
    p_arrival: float
    suspend_from: _timestamp_pb2.Timestamp
    suspend_until: _timestamp_pb2.Timestamp
    def __init__(self, arrival: _Optional[_Union[TimeQuantiles, _Mapping]] = ..., peak: _Optional[_Union[TimeQuantiles, _Mapping]] = ..., end: _Optional[_Union[TimeQuantiles, _Mapping]] = ..., p_arrival: _Optional[float] = ..., suspend_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., suspend_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("id", "kind", "department", "target", "deadline", "window", "priority", "rationale", "rationale_zh", "status", "history", "numbers")
    class NumbersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_ZH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: ActionKind
    department: str
    target: str
    deadline: _timestamp_pb2.Timestamp
    window: _common_pb2.TimeWindow
    priority: str
    rationale: str
    rationale_zh: str
    status: ActionStatus
    history: _containers.RepeatedCompositeFieldContainer[ActionChange]
    numbers: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[ActionKind, str]] = ..., department: _Optional[str] = ..., target: _Optional[str] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window: _Optional[_Union[_common_pb2.TimeWindow, _Mapping]] = ..., priority: _Optional[str] = ..., rationale: _Optional[str] = ..., rationale_zh: _Optional[str] = ..., status: _Optional[_Union[ActionStatus, str]] = ..., history: _Optional[_Iterable[_Union[ActionChange, _Mapping]]] = ..., numbers: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ActionChange(_message.Message):
    __slots__ = ("at", "status", "note", "by")
    AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    status: ActionStatus
    note: str
    by: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[ActionStatus, str]] = ..., note: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class Checklist(_message.Message):
    __slots__ = ("incident_id", "created_at", "actions", "summary", "summary_zh", "markdown_zh", "markdown_en")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_ZH_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_ZH_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_EN_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    created_at: _timestamp_pb2.Timestamp
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    summary: str
    summary_zh: str
    markdown_zh: str
    markdown_en: str
    def __init__(self, incident_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., summary: _Optional[str] = ..., summary_zh: _Optional[str] = ..., markdown_zh: _Optional[str] = ..., markdown_en: _Optional[str] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("id", "network", "network_version", "state", "station_ids", "parameters", "start", "detected_at", "severity", "level", "candidates", "arrivals", "checklist", "updated_at", "end", "version", "versions", "passed_station_ids", "merged_into", "merged_from", "evidence_digest", "conditions")
    class ConditionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    NETWORK_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATION_IDS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ARRIVALS_FIELD_NUMBER: _ClassVar[int]
    CHECKLIST_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PASSED_STATION_IDS_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    MERGED_FROM_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    network: str
    network_version: int
    state: IncidentState
    station_ids: _containers.RepeatedScalarFieldContainer[str]
    parameters: _containers.RepeatedScalarFieldContainer[str]
    start: _timestamp_pb2.Timestamp
    detected_at: _timestamp_pb2.Timestamp
    severity: float
    level: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    arrivals: _containers.RepeatedCompositeFieldContainer[ReceptorArrival]
    checklist: Checklist
    updated_at: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    version: int
    versions: _containers.RepeatedCompositeFieldContainer[IncidentVersion]
    passed_station_ids: _containers.RepeatedScalarFieldContainer[str]
    merged_into: str
    merged_from: _containers.RepeatedScalarFieldContainer[str]
    evidence_digest: str
    conditions: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., network: _Optional[str] = ..., network_version: _Optional[int] = ..., state: _Optional[_Union[IncidentState, str]] = ..., station_ids: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Iterable[str]] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., severity: _Optional[float] = ..., level: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., arrivals: _Optional[_Iterable[_Union[ReceptorArrival, _Mapping]]] = ..., checklist: _Optional[_Union[Checklist, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[IncidentVersion, _Mapping]]] = ..., passed_station_ids: _Optional[_Iterable[str]] = ..., merged_into: _Optional[str] = ..., merged_from: _Optional[_Iterable[str]] = ..., evidence_digest: _Optional[str] = ..., conditions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IncidentVersion(_message.Message):
    __slots__ = ("version", "created_at", "reasons", "reasons_zh", "station_ids", "ranking", "arrivals")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    REASONS_ZH_FIELD_NUMBER: _ClassVar[int]
    STATION_IDS_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    ARRIVALS_FIELD_NUMBER: _ClassVar[int]
    version: int
    created_at: _timestamp_pb2.Timestamp
    reasons: _containers.RepeatedScalarFieldContainer[str]
    reasons_zh: _containers.RepeatedScalarFieldContainer[str]
    station_ids: _containers.RepeatedScalarFieldContainer[str]
    ranking: _containers.RepeatedScalarFieldContainer[str]
    arrivals: _containers.RepeatedCompositeFieldContainer[ReceptorArrival]
    def __init__(self, version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reasons: _Optional[_Iterable[str]] = ..., reasons_zh: _Optional[_Iterable[str]] = ..., station_ids: _Optional[_Iterable[str]] = ..., ranking: _Optional[_Iterable[str]] = ..., arrivals: _Optional[_Iterable[_Union[ReceptorArrival, _Mapping]]] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("network", "state")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    network: str
    state: IncidentState
    def __init__(self, network: _Optional[str] = ..., state: _Optional[_Union[IncidentState, str]] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class GetIncidentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchIncidentsRequest(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: str
    def __init__(self, network: _Optional[str] = ...) -> None: ...

class TraceRequest(_message.Message):
    __slots__ = ("network", "station_id", "parameter", "horizon", "temperature_c")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    network: str
    station_id: str
    parameter: str
    horizon: _duration_pb2.Duration
    temperature_c: float
    def __init__(self, network: _Optional[str] = ..., station_id: _Optional[str] = ..., parameter: _Optional[str] = ..., horizon: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., temperature_c: _Optional[float] = ...) -> None: ...

class CandidateGroup(_message.Message):
    __slots__ = ("candidate_ids", "probabilities")
    CANDIDATE_IDS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    candidate_ids: _containers.RepeatedScalarFieldContainer[str]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, candidate_ids: _Optional[_Iterable[str]] = ..., probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class GrabSample(_message.Message):
    __slots__ = ("reach_id", "chainage_m", "site_id", "site_name", "time", "expected_gain_nats", "predicted_mg_l", "sigma_mg_l")
    class PredictedMgLEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REACH_ID_FIELD_NUMBER: _ClassVar[int]
    CHAINAGE_M_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_NATS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_MG_L_FIELD_NUMBER: _ClassVar[int]
    SIGMA_MG_L_FIELD_NUMBER: _ClassVar[int]
    reach_id: str
    chainage_m: float
    site_id: str
    site_name: str
    time: _timestamp_pb2.Timestamp
    expected_gain_nats: float
    predicted_mg_l: _containers.ScalarMap[str, float]
    sigma_mg_l: float
    def __init__(self, reach_id: _Optional[str] = ..., chainage_m: _Optional[float] = ..., site_id: _Optional[str] = ..., site_name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_gain_nats: _Optional[float] = ..., predicted_mg_l: _Optional[_Mapping[str, float]] = ..., sigma_mg_l: _Optional[float] = ...) -> None: ...

class OperationsCheck(_message.Message):
    __slots__ = ("discharger_id", "text_zh", "text_en")
    DISCHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_ZH_FIELD_NUMBER: _ClassVar[int]
    TEXT_EN_FIELD_NUMBER: _ClassVar[int]
    discharger_id: str
    text_zh: str
    text_en: str
    def __init__(self, discharger_id: _Optional[str] = ..., text_zh: _Optional[str] = ..., text_en: _Optional[str] = ...) -> None: ...

class TraceResponse(_message.Message):
    __slots__ = ("model", "candidates", "stations_saw", "stations_silent", "nearest_upstream_discharger", "groups", "grab_sample", "operations_checks")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    STATIONS_SAW_FIELD_NUMBER: _ClassVar[int]
    STATIONS_SILENT_FIELD_NUMBER: _ClassVar[int]
    NEAREST_UPSTREAM_DISCHARGER_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    GRAB_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_CHECKS_FIELD_NUMBER: _ClassVar[int]
    model: str
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    stations_saw: _containers.RepeatedScalarFieldContainer[str]
    stations_silent: _containers.RepeatedScalarFieldContainer[str]
    nearest_upstream_discharger: str
    groups: _containers.RepeatedCompositeFieldContainer[CandidateGroup]
    grab_sample: GrabSample
    operations_checks: _containers.RepeatedCompositeFieldContainer[OperationsCheck]
    def __init__(self, model: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., stations_saw: _Optional[_Iterable[str]] = ..., stations_silent: _Optional[_Iterable[str]] = ..., nearest_upstream_discharger: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[CandidateGroup, _Mapping]]] = ..., grab_sample: _Optional[_Union[GrabSample, _Mapping]] = ..., operations_checks: _Optional[_Iterable[_Union[OperationsCheck, _Mapping]]] = ...) -> None: ...

class ForecastRequest(_message.Message):
    __slots__ = ("network", "discharger_id", "location", "mass_kg", "duration", "pollutant", "decay_per_day", "start", "threshold_mg_l", "bands")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    DISCHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    MASS_KG_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    POLLUTANT_FIELD_NUMBER: _ClassVar[int]
    DECAY_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MG_L_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    network: str
    discharger_id: str
    location: _common_pb2.Location
    mass_kg: float
    duration: _duration_pb2.Duration
    pollutant: str
    decay_per_day: float
    start: _timestamp_pb2.Timestamp
    threshold_mg_l: float
    bands: bool
    def __init__(self, network: _Optional[str] = ..., discharger_id: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., mass_kg: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pollutant: _Optional[str] = ..., decay_per_day: _Optional[float] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., threshold_mg_l: _Optional[float] = ..., bands: _Optional[bool] = ...) -> None: ...

class ForecastResponse(_message.Message):
    __slots__ = ("receptors",)
    RECEPTORS_FIELD_NUMBER: _ClassVar[int]
    receptors: _containers.RepeatedCompositeFieldContainer[ReceptorArrival]
    def __init__(self, receptors: _Optional[_Iterable[_Union[ReceptorArrival, _Mapping]]] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("incident_id",)
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    def __init__(self, incident_id: _Optional[str] = ...) -> None: ...

class UpdateActionRequest(_message.Message):
    __slots__ = ("incident_id", "action_id", "status", "note", "effective_at")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    action_id: str
    status: ActionStatus
    note: str
    effective_at: _timestamp_pb2.Timestamp
    def __init__(self, incident_id: _Optional[str] = ..., action_id: _Optional[str] = ..., status: _Optional[_Union[ActionStatus, str]] = ..., note: _Optional[str] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CloseIncidentRequest(_message.Message):
    __slots__ = ("id", "force", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    note: str
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...
