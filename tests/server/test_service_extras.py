"""Watch streams, power-meter evidence in the automatic trace, and the audit log over gRPC."""

import json
import threading

import grpc
import pandas as pd
import pytest
from service_util import TOKENS, make_server

from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.convert import timestamp
from server.generated.rivertrace.v1 import audit_pb2, audit_pb2_grpc, monitoring_pb2
from tracer.scenarios import PUHE_START, puhe_replay

PUHE = json.loads(demo_basin_path("puhe").read_text(encoding="utf-8"))


def test_watch_sees_the_incident_and_power_data_raise_a_suspect(tmp_path):
    running = make_server(tmp_path, TOKENS)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin") as c, \
                RivertraceClient(f"127.0.0.1:{running.port}", token="t-hub") as hub:
            c.put_network("puhe", PUHE)
            seen = []

            def watch():
                try:
                    for inc in hub.watch("puhe", timeout=60):
                        seen.append(inc)
                        return
                except grpc.RpcError:
                    pass

            th = threading.Thread(target=watch)
            th.start()
            # plant B's meters: production on, treatment off from day 4 (the scenario's exceedance)
            t = pd.Timestamp(PUHE_START) + pd.Timedelta(days=3, hours=2)
            c.monitoring.ReportOperations(monitoring_pb2.ReportOperationsRequest(network="puhe", states=[
                monitoring_pb2.OperationsState(discharger_id="PH-STP-B", time=timestamp(t), production_on=True,
                                               treatment_on=False)]), **c._kw())
            c.ingest("puhe", puhe_replay().readings.frame.sort_values("time").assign(unit="mg/L"))
            assert running.pipeline.wait_idle(60)
            th.join(60)
            assert seen and seen[0].network == "puhe"
            top = seen[0].candidates[0]
            assert top.id == "PH-STP-B" and "treatment off" in top.explanation["operations"]
            # audited and queryable by an admin only
            entries = audit_pb2_grpc.AuditServiceStub(c.channel).ListAudit(audit_pb2.ListAuditRequest(), **c._kw()).entries
            assert {"PutNetwork", "ReportOperations", "IngestReadings"} <= {e.method for e in entries}
            assert all(e.client and e.role for e in entries)
            with pytest.raises(grpc.RpcError) as info:
                audit_pb2_grpc.AuditServiceStub(hub.channel).ListAudit(audit_pb2.ListAuditRequest(), **hub._kw())
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        running.stop(grace=1.0)


def test_ingest_csv_takes_the_replay_commands_own_output(tmp_path):
    """``rivertrace replay`` writes an empty ``flag`` cell for unflagged readings; pandas reads it as NaN, which
    once ended the upload with "Exception iterating requests!". The CSV comes from the CLI itself."""
    from server.cli import main

    csv = tmp_path / "ruxi.csv"
    assert main(["replay", "ruxi", "--output", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert frame["flag"].isna().any()  # the case under test: empty flag cells
    running = make_server(tmp_path, TOKENS)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin") as c:
            c.put_network("ruxi", json.loads(demo_basin_path("ruxi").read_text(encoding="utf-8")))
            acks = c.ingest_csv("ruxi", csv, batch=500)
            assert not any(a.rejected for a in acks)
            assert sum(a.stored + a.duplicates for a in acks) == len(frame)
    finally:
        running.stop(grace=1.0)
