"""A Python client for the bureau's scripts.

```python
from server.client import RivertraceClient
with RivertraceClient("127.0.0.1:50051", token="s3cret-bureau") as rt:
    rt.put_network("ruxi", "ruxi.json")
    rt.ingest_csv("ruxi", "readings.csv")
    for inc in rt.incidents("ruxi"):
        print(inc.id, [c.id for c in inc.candidates[:3]])
```

Every call has a deadline (``timeout`` seconds); errors are ``grpc.RpcError`` with the server's
status and message (``field_violations(err)`` lists the BadRequest details).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

import grpc
import pandas as pd
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    common_pb2,
    incidents_pb2,
    incidents_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)

from .convert import timestamp

DEFAULT_TIMEOUT_S = 30.0
INGEST_BATCH = 1000


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of an INVALID_ARGUMENT error's google.rpc.BadRequest details."""
    st = rpc_status.from_call(err)  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    for d in st.details if st else []:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [(v.field, v.description) for v in br.field_violations]
    return out


class RivertraceClient:
    """Thin, typed access to the four services over one channel."""

    def __init__(self, address: str, *, token: str | None = None, root_certificates: bytes | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, max_message_mb: int = 16, private_key: bytes | None = None,
                 certificate_chain: bytes | None = None) -> None:
        """``root_certificates`` (PEM) turns TLS on; ``private_key`` and ``certificate_chain`` (PEM)
        add a client certificate for a server that requires one (mTLS, config ``[tls] client_ca``)."""
        opts = [("grpc.max_receive_message_length", max_message_mb << 20), ("grpc.max_send_message_length", max_message_mb << 20)]
        if (private_key is None) != (certificate_chain is None):
            raise ValueError("a client certificate needs both private_key and certificate_chain")
        if root_certificates is not None or certificate_chain is not None:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key=private_key, certificate_chain=certificate_chain)
            self.channel = grpc.secure_channel(address, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(address, options=opts)
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout
        self.networks = network_pb2_grpc.NetworkServiceStub(self.channel)
        self.monitoring = monitoring_pb2_grpc.MonitoringServiceStub(self.channel)
        self.incident_service = incidents_pb2_grpc.IncidentServiceStub(self.channel)
        self.alerts = alerts_pb2_grpc.AlertServiceStub(self.channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _kw(self, timeout: float | None = None) -> dict[str, Any]:
        return {"timeout": timeout or self.timeout, "metadata": self.metadata}

    # ----------------------------------------------------------------------------- network
    def put_network(self, name: str, document: dict[str, Any] | str | Path) -> network_pb2.PutNetworkResponse:
        """Store a network document (a dict, or a path to .json or .gpkg)."""
        if isinstance(document, dict):
            req = network_pb2.PutNetworkRequest(name=name, document_json=json.dumps(document, ensure_ascii=False))
        elif str(document).lower().endswith(".gpkg"):
            req = network_pb2.PutNetworkRequest(name=name, geopackage=Path(document).read_bytes())
        else:
            req = network_pb2.PutNetworkRequest(name=name, document_json=Path(document).read_text(encoding="utf-8"))
        return self.networks.PutNetwork(req, **self._kw())

    def get_network(self, name: str, version: int = 0) -> dict[str, Any]:
        return json.loads(self.networks.GetNetwork(network_pb2.GetNetworkRequest(name=name, version=version), **self._kw()).document_json)

    def features(self, name: str, kind: str | None = None) -> list[network_pb2.Feature]:
        k = getattr(common_pb2, f"FEATURE_KIND_{kind.upper()}") if kind else 0
        return list(self.networks.ListFeatures(network_pb2.ListFeaturesRequest(name=name, kind=k), **self._kw()).features)

    # ----------------------------------------------------------------------------- readings
    def ingest(self, network: str, frame: pd.DataFrame, batch: int = INGEST_BATCH,
               timeout: float | None = None) -> list[monitoring_pb2.IngestAck]:
        """Stream a DataFrame (station_id, parameter, time (tz-aware), value, unit[, flag]); one ack per batch."""
        def batches() -> Iterator[monitoring_pb2.ReadingBatch]:
            # a missing flag (absent column, empty CSV cell read as NaN, None) is "no flag"
            flags = (frame["flag"] if "flag" in frame else pd.Series([None] * len(frame), index=frame.index)).map(
                lambda f: f if isinstance(f, str) else "")
            for i in range(0, len(frame), batch):
                part = frame.iloc[i:i + batch]
                yield monitoring_pb2.ReadingBatch(network=network, batch_id=i // batch, readings=[
                    monitoring_pb2.Reading(station_id=s, parameter=p, time=timestamp(t), value=float(v), unit=u, flag=f)
                    for s, p, t, v, u, f in zip(part["station_id"], part["parameter"], part["time"], part["value"],
                                                part["unit"], flags.iloc[i:i + batch])])
        return list(self.monitoring.IngestReadings(batches(), **self._kw(timeout)))

    def ingest_csv(self, network: str, path: str | Path, batch: int = INGEST_BATCH) -> list[monitoring_pb2.IngestAck]:
        """Stream a readings CSV (station_id, parameter, time with offset, value, unit, flag)."""
        df = pd.read_csv(path, dtype={"station_id": str, "parameter": str, "unit": str, "flag": str},
                         keep_default_na=False, na_values={"value": ["", "NaN", "nan"]})
        df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
        return self.ingest(network, df, batch)

    # ----------------------------------------------------------------------------- incidents
    def incidents(self, network: str = "") -> list[incidents_pb2.Incident]:
        return list(self.incident_service.ListIncidents(incidents_pb2.ListIncidentsRequest(network=network), **self._kw()).incidents)

    def incident(self, incident_id: str) -> incidents_pb2.Incident:
        return self.incident_service.GetIncident(incidents_pb2.GetIncidentRequest(id=incident_id), **self._kw())

    def watch(self, network: str = "", timeout: float = 3600.0) -> Iterable[incidents_pb2.Incident]:
        """Incident changes as they happen, until ``timeout`` seconds have passed."""
        return self.incident_service.WatchIncidents(incidents_pb2.WatchIncidentsRequest(network=network), **self._kw(timeout))

    def trace(self, network: str, station: str, parameter: str, temperature_c: float = 0.0) -> incidents_pb2.TraceResponse:
        return self.incident_service.Trace(incidents_pb2.TraceRequest(network=network, station_id=station, parameter=parameter,
                                                                      temperature_c=temperature_c), **self._kw())

    def forecast(self, network: str, discharger: str, mass_kg: float, pollutant: str) -> incidents_pb2.ForecastResponse:
        return self.incident_service.Forecast(incidents_pb2.ForecastRequest(network=network, discharger_id=discharger,
                                                                            mass_kg=mass_kg, pollutant=pollutant), **self._kw())

    def update_action(self, incident_id: str, action_id: str, status: str, note: str = "") -> incidents_pb2.Action:
        st = getattr(incidents_pb2, f"ACTION_STATUS_{status.upper()}")
        return self.incident_service.UpdateAction(incidents_pb2.UpdateActionRequest(
            incident_id=incident_id, action_id=action_id, status=st, note=note), **self._kw())

    def close_incident(self, incident_id: str, force: bool = False, note: str = "") -> incidents_pb2.Incident:
        return self.incident_service.CloseIncident(incidents_pb2.CloseIncidentRequest(id=incident_id, force=force, note=note),
                                                   **self._kw())

    # ----------------------------------------------------------------------------- alerts
    def register_hub(self, target_id: str, *, grpc_address: str | None = None, webhook_url: str | None = None,
                     network: str = "", secret: str = "", tls: bool = False) -> alerts_pb2.Target:
        req = alerts_pb2.RegisterTargetRequest(id=target_id, network=network, webhook_secret=secret, tls=tls)
        if grpc_address:
            req.grpc_address = grpc_address
        if webhook_url:
            req.webhook_url = webhook_url
        return self.alerts.RegisterTarget(req, **self._kw())

    def deliveries(self, incident_id: str = "") -> list[alerts_pb2.Delivery]:
        return list(self.alerts.ListDeliveries(alerts_pb2.ListDeliveriesRequest(incident_id=incident_id), **self._kw()).deliveries)

    def get_alert(self, alert_id: str) -> Any:
        """One alert as queued (``alert.cap_xml``: the same alert as a CAP 1.2 document)."""
        return self.alerts.GetAlert(alerts_pb2.GetAlertRequest(alert_id=alert_id), **self._kw())

    def replay_deliveries(self, target_id: str = "", alert_id: str = "", incident_id: str = "") -> int:
        """Admin: put dead-lettered deliveries back in the queue; returns how many."""
        return self.alerts.ReplayDeliveries(alerts_pb2.ReplayDeliveriesRequest(
            target_id=target_id, alert_id=alert_id, incident_id=incident_id), **self._kw()).replayed
