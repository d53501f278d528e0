"""``RivertraceClient.ingest_csv`` on a CSV whose ``flag`` column is empty (as ``rivertrace replay`` writes it).

pandas reads an empty CSV cell as NaN; the client used to pass that float to the protobuf ``flag`` string
field and fail with a TypeError before anything was sent. The stub below stands in for the gRPC channel
and records the readings the client would stream, so the check is on the messages themselves.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from server.client import RivertraceClient
from server.generated.rivertrace.v1 import monitoring_pb2

CSV = (
    "station_id,parameter,time,value,unit,flag\n"
    "RX-MID,COD,2024-06-01T08:00:00+08:00,12.5,mg/L,\n"
    "RX-MID,COD,2024-06-01T08:05:00+08:00,13.0,mg/L,suspect\n"
    "RX-OILSPOT,DO,2024-06-01T08:00:00+08:00,7.1,mg/L,\n"
)


class _Stub:
    def __init__(self) -> None:
        self.readings: list[monitoring_pb2.Reading] = []

    def IngestReadings(self, batches: Any, **_kw: Any) -> list[monitoring_pb2.IngestAck]:
        acks = []
        for b in batches:
            self.readings.extend(b.readings)
            acks.append(monitoring_pb2.IngestAck(batch_id=b.batch_id))
        return acks


def test_ingest_csv_with_empty_flags(tmp_path: Path) -> None:
    path = tmp_path / "replay.csv"
    path.write_text(CSV, encoding="utf-8")
    client = RivertraceClient("localhost:1")  # channel is lazy: nothing connects
    stub = _Stub()
    client.monitoring = stub  # type: ignore[assignment]
    try:
        acks = client.ingest_csv("ruxi", path, batch=2)
    finally:
        client.close()
    assert len(acks) == 2
    assert [r.flag for r in stub.readings] == ["", "suspect", ""]
    assert [r.station_id for r in stub.readings] == ["RX-MID", "RX-MID", "RX-OILSPOT"]
    assert stub.readings[0].value == 12.5
    # 08:00 +08:00 is 00:00 UTC
    assert stub.readings[0].time.seconds % 86400 == 0
