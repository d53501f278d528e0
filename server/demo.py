"""``rivertrace demo``: the two incidents of the design brief through the running service.

It starts the gRPC server on the embedded defaults (a fresh SQLite file, open mode on loopback),
stores the two bundled basins, starts a sample governance-hub receiver and registers it, then
streams the replayed station readings of the Ruxi oil film and the Puhe low-oxygen event (model-
generated, see :mod:`tracer.scenarios`). The service detects each incident, traces it, forecasts
it, plans the response and pushes an alert; the demo prints what the hub received, in Chinese and
English: candidates, arrival times, checklist. Ruxi's readings arrive in two parts, so the incident opened
on the first is updated (``update`` alert: what changed, the intake's narrower P10-P90 arrival band) when
the rest arrives. It stops by itself.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import grpc
import pandas as pd

from hydrology.timezones import local_time, zone
from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    common_pb2,
    monitoring_pb2,
    monitoring_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)
from tracer.scenarios import puhe_replay, ruxi_replay

from .app import create_server
from .cli import demo_basin_path
from .config import Config
from .convert import timestamp, to_datetime
from .hub import start_hub
from .outbox_store import Outbox

BATCH = 500
WAIT_S = 60.0
T = {
    "start": ("启动服务：{a}，数据库 {db}；治理中心接收端 {h}", "Service on {a}, database {db}; hub receiver on {h}"),
    "stream": ("回放 {n} 条监测数据：{d}", "Streaming {n} replayed readings: {d}"),
    "got": ("治理中心收到告警 {i}（第 {s} 条）：{m}", "Hub received alert {i} (#{s}): {m}"),
    "cands": ("溯源：", "Sources:"),
    "arr": ("到达预报：", "Arrivals:"),
    "none": ("（未收到告警）", "(no alert received)"),
    "phase": ("先到达 {n} 条（事发后 {h} 小时内的数据），其余随后到达", "First {n} readings (the first {h} h), the rest later"),
    "intake": ("  {i} 预计到达 {t}{b}", "  {i} arrival now {t}{b}"),
}
#: Ruxi's readings arrive in two parts, so the demo shows the incident opened on the first part and updated
#: (re-traced, re-forecast, its intake band narrowed) when the plume has passed more stations [h]
FIRST_PART_H = 2.0
INTAKE = common_pb2.FEATURE_KIND_INTAKE


def _t(key: str, lang: str) -> str:
    return T[key][0 if lang == "zh" else 1]


def _local(ts: object, tz: ZoneInfo, lang: str) -> str:
    """A gRPC Timestamp (UTC) in the network's zone, with date and zone: ``2025-07-15 09:35 CST``."""
    return local_time(to_datetime(ts), tz, lang)  # type: ignore[arg-type]


def _stream(channel: grpc.Channel, network: str, frame: object) -> int:
    f = frame.sort_values("time", kind="stable")  # type: ignore[attr-defined]
    batches = (monitoring_pb2.ReadingBatch(network=network, batch_id=i // BATCH, readings=[
        monitoring_pb2.Reading(station_id=s, parameter=p, time=timestamp(t), value=v, unit="mg/L")
        for s, p, t, v in zip(part["station_id"], part["parameter"], part["time"], part["value"])])
        for i, part in ((i, f.iloc[i:i + BATCH]) for i in range(0, len(f), BATCH)))
    return sum(a.stored for a in monitoring_pb2_grpc.MonitoringServiceStub(channel).IngestReadings(batches, timeout=120))


def _band(a: object, tz: ZoneInfo, lang: str) -> str:
    q = a.band.arrival  # type: ignore[attr-defined]
    if not (a.HasField("band") and q.HasField("p10") and q.HasField("p90")):  # type: ignore[attr-defined]
        return ""
    return f"  P10-P90 {_local(q.p10, tz, lang)} - {_local(q.p90, tz, lang)}"


def _print_alert(alert: alerts_pb2.Alert, lang: str, out: TextIO, tz: ZoneInfo) -> None:
    inc = alert.incident
    print(_t("got", lang).format(i=alert.alert_id, s=alert.sequence, m=alert.summary_zh if lang == "zh" else alert.summary),
          file=out)
    if alert.kind == "update":  # what changed, and the intakes' forecast now; the checklist was sent before
        for a in inc.arrivals:
            if a.kind == INTAKE and a.HasField("arrival"):
                print(_t("intake", lang).format(i=a.id, t=_local(a.arrival, tz, lang), b=_band(a, tz, lang)), file=out)
        return
    print(_t("cands", lang), file=out)
    for rank, c in enumerate(inc.candidates[:3], 1):
        size = f"{c.mass_kg:.0f} kg" if c.mass_kg else f"{c.rate_kg_s * 1000:.1f} g/s CBOD"
        print(f"  {rank}. {c.id:<14} {c.kind:<16} p={c.probability:.2f}  {c.distance_m / 1000:.1f} km  "
              f"{_local(c.release_start, tz, lang) if c.HasField('release_start') else '-'}  {size}", file=out)
    if inc.arrivals:
        print(_t("arr", lang), file=out)
        for a in inc.arrivals:
            if a.HasField("arrival"):
                print(f"  {a.id:<12} {_local(a.arrival, tz, lang)} - {_local(a.end, tz, lang) if a.HasField('end') else '?'}  "
                      f"peak {a.peak_mg_l:.3g} mg/L{_band(a, tz, lang) if a.kind == INTAKE else ''}", file=out)
    print(inc.checklist.markdown_zh if lang == "zh" else inc.checklist.markdown_en, file=out)


def _delivered(outbox: Outbox, target: str) -> bool:
    """Every alert queued for ``target`` delivered (at least one)."""
    rows = outbox.deliveries(target_id=target)
    return bool(rows) and all(r[4] == "delivered" for r in rows)


def run_demo(lang: str = "both", out: TextIO = sys.stdout) -> int:
    """Run the service, a hub and both replays; print what the hub received; stop."""
    t0 = time.perf_counter()
    langs = ("zh", "en") if lang == "both" else (lang,)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rivertrace-demo-") as tmp:
        db = Path(tmp) / "rivertrace.db"
        running = create_server(Config(db=db, port=0))
        running.server.start()
        hub_server, hub_port, hub = start_hub()
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        outbox = Outbox(running.store)
        try:
            for lg in langs:
                print(_t("start", lg).format(a=f"127.0.0.1:{running.port}", db=db, h=f"127.0.0.1:{hub_port}"), file=out)
            nets = network_pb2_grpc.NetworkServiceStub(channel)
            alerts = alerts_pb2_grpc.AlertServiceStub(channel)
            for name, replay in (("ruxi", ruxi_replay()), ("puhe", puhe_replay())):
                doc = json.loads(demo_basin_path(name).read_text(encoding="utf-8"))
                nets.PutNetwork(network_pb2.PutNetworkRequest(name=name, document_json=json.dumps(doc, ensure_ascii=False)),
                                timeout=30)
                alerts.RegisterTarget(alerts_pb2.RegisterTargetRequest(id=f"hub-{name}", grpc_address=f"127.0.0.1:{hub_port}",
                                                                       network=name), timeout=10)
                frame = replay.readings.frame
                parts = [frame]
                if name == "ruxi":
                    cut = frame["time"].min() + pd.Timedelta(hours=FIRST_PART_H)
                    parts = [frame[frame["time"] <= cut], frame[frame["time"] > cut]]
                    for lg in langs:
                        print(_t("phase", lg).format(n=len(parts[0]), h=f"{FIRST_PART_H:g}"), file=out)
                n = 0
                for part in parts:
                    n += _stream(channel, name, part)
                    running.pipeline.wait_idle(WAIT_S)
                for lg in langs:
                    print(_t("stream", lg).format(n=n, d=replay.description), file=out)
                deadline = time.monotonic() + WAIT_S
                while time.monotonic() < deadline and not _delivered(outbox, f"hub-{name}"):
                    time.sleep(0.05)
                got = [a for a in hub.alerts if a.incident.network == name]
                if not got:
                    missing.append(name)
                for lg in langs:
                    print(f"\n======== {name} ========", file=out)
                    for a in got:
                        _print_alert(a, lg, out, zone(doc.get("timezone")))
                    if not got:
                        print(_t("none", lg), file=out)
        finally:
            channel.close()
            running.stop(grace=2.0)
            hub_server.stop(0)
    print(f"({time.perf_counter() - t0:.1f} s)", file=out)
    if missing:
        print(f"rivertrace demo: no alert reached the hub for {', '.join(missing)} (see the log above)", file=sys.stderr)
        return 1
    return 0
