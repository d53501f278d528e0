"""End to end: the Ruxi oil incident arrives from the stations' online monitors over HJ 212, with the
food plant's treatment facility reporting "off" over HJ 212 while its power meter says production is
on; the automatic pipeline opens the incident, pins the plant and counts the operations evidence."""

import json
import math

import grpc
import pandas as pd
from hj212_encoder import Monitor, frame, segment, values_cp

from server.app import create_server
from server.cli import demo_basin_path
from server.config import Config
from server.generated.rivertrace.v1 import incidents_pb2, incidents_pb2_grpc
from tracer.priors import LR_PRODUCTION_ON_TREATMENT_OFF
from tracer.scenarios import ruxi_replay

PLANT_MN = "FOODPLANT000000000000001"
MNS = {"RX-UP": "RUXI0001", "RX-OILSPOT": "RUXI0002", "RX-MID": "RUXI0003", "RX-DOWN": "RUXI0004"}


def _mn(station):
    return MNS[station]


def _datatime(t_utc):
    return pd.Timestamp(t_utc).tz_convert("Asia/Shanghai").strftime("%Y%m%d%H%M%S")


def test_incident_from_hj212_uploads_is_traced_to_the_plant_with_its_treatment_off(tmp_path):
    doc = json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8"))
    for s in doc["stations"]:
        s["hj212_mn"] = _mn(s["id"])
    next(d for d in doc["dischargers"] if d["id"] == "RX-FOOD-1")["hj212_mn"] = PLANT_MN
    running = create_server(Config(db=tmp_path / "rt.db", port=0, hj212_port=0), deliver=False)
    running.server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        running.store.put_network("ruxi", doc)
        f = ruxi_replay().readings.frame.sort_values("time", kind="stable")
        t_state = f["time"].min() + pd.Timedelta(hours=1)
        # the power meter (gRPC ReportOperations stores the same row) says production is on ...
        running.store.add_operations("ruxi", [("RX-FOOD-1", int(t_state.value), True, True, False)])
        m = Monitor(running.extras["hj212"].port)
        try:
            # ... and the plant's data logger reports its treatment facility stopped
            seg = segment("2021", PLANT_MN, f"DataTime={_datatime(t_state + pd.Timedelta(minutes=5))};SB1-RS=0", st="32")
            assert m.exchange(frame(seg))["CN"] == "9014"
            for (station, t), part in f.groupby(["station_id", "time"], sort=False):
                cp = values_cp(_datatime(t), {"w22001": (f"{part['value'].iloc[0]:.6f}", "N")})
                assert m.exchange(frame(segment("2011", _mn(station), cp)))["CN"] == "9014"
        finally:
            m.close()
        assert running.store.count_readings("ruxi") == len(f)
        assert running.pipeline.wait_idle(120)   # 120 s: detection, attribution and forecast on a shared 2-core machine
        incidents = incidents_pb2_grpc.IncidentServiceStub(ch).ListIncidents(
            incidents_pb2.ListIncidentsRequest(network="ruxi"), timeout=30).incidents
        assert incidents, "the HJ 212 readings opened no incident"
        top = incidents[0].candidates[0]
        assert top.id == "RX-FOOD-1"
        assert "production on, treatment off" in top.explanation["operations"]
        # its factor (x5) on top of the plant's 1 past violation (x1.25); 1e-9: float round-off of two logs
        assert abs(top.evidence["operations"] - math.log(LR_PRODUCTION_ON_TREATMENT_OFF * 1.25)) < 1e-9
    finally:
        ch.close()
        running.stop(grace=1.0)
