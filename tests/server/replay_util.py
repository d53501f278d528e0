"""Replaying the Ruxi readings into the pipeline in any order, batching and delay (no gRPC: the
pipeline's own screening, driven synchronously after every arrival tick)."""

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from google.protobuf import json_format

from server.cli.common import demo_basin_path
from server.generated.rivertrace.v1 import alerts_pb2, incidents_pb2
from server.outbox_store import Outbox
from server.pipeline import Broadcaster, Pipeline
from server.servicers import Networks
from server.storage import Store
from tracer.scenarios import ruxi_replay

_FRAME = None


def ruxi_frame() -> pd.DataFrame:
    global _FRAME
    if _FRAME is None:
        _FRAME = ruxi_replay().readings.frame
    return _FRAME


@dataclass
class Run:
    store: Store
    outbox: Outbox
    pipeline: Pipeline

    def incidents(self) -> dict[str, incidents_pb2.Incident]:
        return {i: json_format.Parse(p, incidents_pb2.Incident()) for i, _s, p in self.outbox.incidents("ruxi")}

    def alerts(self) -> list[alerts_pb2.Alert]:
        rows = self.store._reader().execute("SELECT payload, sequence FROM alerts ORDER BY created_at_ns, sequence")
        out = []
        for payload, seq in rows:
            a = alerts_pb2.Alert.FromString(payload)
            a.sequence = seq
            out.append(a)
        return out

    def add(self, part: pd.DataFrame) -> None:
        self.store.add_readings("ruxi", [(s, p, int(t.value), float(v), None) for s, p, t, v in
                                         zip(part.station_id, part.parameter, part.time, part.value)])
        self.pipeline.run_once("ruxi")


def start(tmp_path) -> Run:
    store = Store(tmp_path / "rt.db")
    store.put_network("ruxi", json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8")))
    outbox = Outbox(store)
    return Run(store, outbox, Pipeline(store, outbox, Networks(store), Broadcaster()))


def arrival_ticks(delays_s: dict[str, float], tick_min: float, seed: int = 0) -> list[pd.DataFrame]:
    """The Ruxi readings cut into what arrives in each tick when each station's readings come ``delays_s``
    late (a station's backlog), shuffled within a tick."""
    f = ruxi_frame()
    arrive = f["time"] + pd.to_timedelta(f["station_id"].map(delays_s).fillna(0.0), unit="s")
    k = ((arrive - arrive.min()) // pd.Timedelta(minutes=tick_min)).to_numpy()
    return [f[k == i].sample(frac=1.0, random_state=seed) for i in np.unique(k)]


def replay(tmp_path, delays_s: dict[str, float], tick_min: float, seed: int = 0,
           after_tick=None) -> Run:
    run = start(tmp_path)
    for i, part in enumerate(arrival_ticks(delays_s, tick_min, seed)):
        run.add(part)
        if after_tick is not None:
            after_tick(run, i)
    return run


def signature(incidents: dict[str, incidents_pb2.Incident]) -> dict:
    """What must not depend on arrival order: per incident not merged away, its stations, start,
    candidates with probabilities, checklist (id, kind, target, deadline, status) and forecasts with
    bands. Not the version count, the history or the wall-clock stamps."""
    out = {}
    for iid, m in incidents.items():
        if m.merged_into:
            continue
        out[iid] = (tuple(m.station_ids), m.start.ToNanoseconds(), m.state,
                    tuple((c.id, round(c.probability, 9), round(c.mass_kg, 6)) for c in m.candidates),
                    tuple((a.id, a.kind, a.target, a.deadline.ToNanoseconds(), a.status) for a in m.checklist.actions),
                    tuple((a.id, a.arrival.ToNanoseconds(), round(a.peak_mg_l, 9), a.band.arrival.p10.ToNanoseconds(),
                           a.band.arrival.p90.ToNanoseconds()) for a in m.arrivals))
    return out
