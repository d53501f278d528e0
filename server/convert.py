"""The one place where protobuf messages become domain objects and back.

Science packages never see a protobuf; servicers call these functions. Units: the proto fields carry
their units in their names, as the domain does, so conversion is mostly structural; readings are
converted to SI by :mod:`tracer.readings` (their ``unit`` field).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from google.protobuf.timestamp_pb2 import Timestamp

from hydrology.network import Feature, RiverNetwork
from hydrology.problems import Problem
from server.generated.rivertrace.v1 import common_pb2, monitoring_pb2, network_pb2
from tracer.readings import LoadResult, readings_from_frame

FEATURE_KIND = {"station": common_pb2.FEATURE_KIND_STATION, "discharger": common_pb2.FEATURE_KIND_DISCHARGER,
                "intake": common_pb2.FEATURE_KIND_INTAKE, "structure": common_pb2.FEATURE_KIND_STRUCTURE,
                "site": common_pb2.FEATURE_KIND_SITE}
FEATURE_KIND_NAME = {v: k for k, v in FEATURE_KIND.items()}


def timestamp(t: datetime | pd.Timestamp | int | None) -> Timestamp | None:
    """A protobuf Timestamp from a timezone-aware datetime, a pandas Timestamp or ns since the epoch."""
    if t is None:
        return None
    ts = Timestamp()
    if isinstance(t, (int, np.integer)):
        ts.FromNanoseconds(int(t))
    else:
        ts.FromNanoseconds(int(pd.Timestamp(t).value))
    return ts


def to_datetime(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, tz=timezone.utc)


def problem(p: Problem) -> common_pb2.Problem:
    return common_pb2.Problem(severity=p.severity, element=p.element, id=p.id, field=p.field, message=p.message)


def feature(f: Feature) -> network_pb2.Feature:
    return network_pb2.Feature(kind=FEATURE_KIND[f.kind], id=f.id, name=f.name or "",
                               location=common_pb2.Location(reach_id=f.reach, chainage_m=f.chainage_m),
                               attributes_json=json.dumps(dict(f.attrs), ensure_ascii=False, default=str))


def features(net: RiverNetwork, kind: int) -> list[network_pb2.Feature]:
    kinds = None if kind == common_pb2.FEATURE_KIND_UNSPECIFIED else (FEATURE_KIND_NAME[kind],)
    return [feature(f) for f in net.iter_features(kinds)]  # type: ignore[arg-type]


def readings_batch(batch: monitoring_pb2.ReadingBatch, known_stations: set[str]) -> LoadResult:
    """Validate and convert a batch of readings to SI; rejected rows keep their index in the batch."""
    rows: list[dict[str, Any]] = []
    for r in batch.readings:
        t = pd.Timestamp(r.time.ToNanoseconds(), unit="ns", tz="UTC") if r.HasField("time") else pd.NaT
        rows.append({"station_id": r.station_id, "parameter": r.parameter, "time": t, "value": r.value,
                     "unit": r.unit, "flag": r.flag or None})
    df = pd.DataFrame(rows, columns=["station_id", "parameter", "time", "value", "unit", "flag"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return readings_from_frame(df, known_stations=known_stations)


def reading_rows(result: LoadResult) -> list[tuple[str, str, int, float, str | None]]:
    """Storage rows (station, parameter, time ns, SI value, flag) of the accepted readings."""
    f = result.readings.frame
    t_ns = f["time"].astype("int64").to_numpy()
    flags = f["flag"].where(f["flag"].notna(), None).tolist() if "flag" in f else [None] * len(f)
    return list(zip(f["station_id"].tolist(), f["parameter"].tolist(), t_ns.tolist(), f["value"].astype(float).tolist(), flags))


def rejected_problems(result: LoadResult) -> list[common_pb2.Problem]:
    """Rejected rows as problems: element "readings", id "#<index in batch>" (0-based), field, reason."""
    return [common_pb2.Problem(severity="error", element="readings", id=f"#{r.row_number - 1}", field=r.field,
                               message=f"{r.reason} (value {r.value!r})") for r in result.rejected]
