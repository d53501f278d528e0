"""A sample governance-hub receiver: the ``HubReceiver`` service, deduplicating on ``alert_id``.

The demo starts one to show what the hub gets; tests use it as the real receiver on loopback.
A production hub implements the same one-method service (or registers a webhook URL).
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc

from server.generated.rivertrace.v1 import alerts_pb2, alerts_pb2_grpc


class SampleHub(alerts_pb2_grpc.HubReceiverServicer):
    """Keeps every distinct alert in arrival order; counts duplicates (at-least-once delivery)."""

    def __init__(self, on_alert: Any = None) -> None:
        self.alerts: list[alerts_pb2.Alert] = []
        self.duplicates = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.received = threading.Event()
        self.on_alert = on_alert

    def Deliver(self, request: alerts_pb2.Alert, context: grpc.ServicerContext) -> alerts_pb2.DeliverAck:
        with self._lock:
            if request.alert_id in self._seen:
                self.duplicates += 1
            else:
                self._seen.add(request.alert_id)
                self.alerts.append(request)
                if self.on_alert is not None:
                    self.on_alert(request)
            self.received.set()
        return alerts_pb2.DeliverAck(alert_id=request.alert_id)


def start_hub(port: int = 0, hub: SampleHub | None = None) -> tuple[grpc.Server, int, SampleHub]:
    """Start a sample hub on 127.0.0.1 (port 0: any free port)."""
    hub = hub or SampleHub()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    alerts_pb2_grpc.add_HubReceiverServicer_to_server(hub, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound, hub
