"""Build and run the gRPC server.

``create_server(config)`` returns ``(server, port)`` ready to start, so tests bind port 0 and talk
over a real loopback channel; ``serve(config)`` runs it until SIGTERM/SIGINT and then shuts down
gracefully: new calls are refused, in-flight calls get ``GRACE_S`` seconds to finish, the alert
outbox stops after its current delivery, and the database is closed.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.generated.rivertrace.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    incidents_pb2,
    incidents_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
    network_pb2,
    network_pb2_grpc,
)

from .auth import AuthInterceptor
from .config import Config
from .delivery import Deliverer
from .hj212 import start_gateway
from .incident_service import AlertServicer, AuditServicer, IncidentServicer
from .outbox_store import Outbox
from .pipeline import Broadcaster, Pipeline
from .servicers import MonitoringServicer, Networks, NetworkServicer
from .storage import Store

log = logging.getLogger("rivertrace.server")
GRACE_S = 10.0
SERVICE_NAMES = (
    network_pb2.DESCRIPTOR.services_by_name["NetworkService"].full_name,
    monitoring_pb2.DESCRIPTOR.services_by_name["MonitoringService"].full_name,
    incidents_pb2.DESCRIPTOR.services_by_name["IncidentService"].full_name,
    alerts_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)


@dataclass
class Running:
    """A server and what it owns, for tests and ``serve``."""

    server: grpc.Server
    port: int
    store: Store
    networks: Networks
    health: health.HealthServicer
    extras: dict[str, Any] = field(default_factory=dict)

    def stop(self, grace: float = GRACE_S) -> None:
        """Refuse new calls, let in-flight ones finish (``grace`` s), stop the workers, close the file."""
        for name in SERVICE_NAMES:
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.stop(grace).wait()
        for worker in self.extras.values():
            if hasattr(worker, "stop"):
                worker.stop()
        self.store.close()

    @property
    def pipeline(self) -> Pipeline:
        return self.extras["pipeline"]

    @property
    def outbox(self) -> Outbox:
        return self.extras["outbox"]


def _credentials(config: Config) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    key, cert = config.tls_key.read_bytes(), config.tls_cert.read_bytes()
    ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def create_server(config: Config, store: Store | None = None, *, deliver: bool = True) -> Running:
    """A configured, not yet started server and its port (``config.port`` 0 picks a free port).

    Its background workers (the pipeline and, with ``deliver``, the alert deliverer) start at once.
    """
    store = store or Store(config.db)
    networks = Networks(store)
    outbox = Outbox(store)
    broadcaster = Broadcaster()
    pipeline = Pipeline(store, outbox, networks, broadcaster)
    limit = config.max_message_mb * 1024 * 1024
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.workers), interceptors=[AuthInterceptor(config)],
                         options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
    network_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkServicer(config, store, networks), server)
    monitoring_pb2_grpc.add_MonitoringServiceServicer_to_server(
        MonitoringServicer(config, store, networks, on_readings=pipeline.notify), server)
    incidents_pb2_grpc.add_IncidentServiceServicer_to_server(
        IncidentServicer(config, store, networks, outbox, broadcaster), server)
    alerts_pb2_grpc.add_AlertServiceServicer_to_server(AlertServicer(config, store, outbox), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(store), server)
    hs = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    address = f"{config.host}:{config.port}"
    creds = _credentials(config)
    port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    for name in (*SERVICE_NAMES, ""):
        hs.set(name, health_pb2.HealthCheckResponse.SERVING)
    if config.open_mode:
        log.warning("no [tokens] configured: open mode, every caller is admin, listening on loopback only")
    extras: dict[str, Any] = {"pipeline": pipeline, "outbox": outbox, "broadcaster": broadcaster}
    if deliver:
        extras["deliverer"] = Deliverer(outbox, config.outbox_poll_s)
    if (gateway := start_gateway(config, store, networks, pipeline.notify)) is not None:
        extras = {"hj212": gateway, **extras}  # stopped first: it feeds the pipeline
    return Running(server, port, store, networks, hs, extras)


def serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT; shut down gracefully."""
    running = create_server(config)
    running.server.start()
    log.info("rivertrace serving on %s:%d (db %s)", config.host, running.port, config.db)
    print(f"rivertrace serving on {config.host}:{running.port} (db {config.db}); Ctrl-C to stop", flush=True)
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down (grace %.0f s)", signum, GRACE_S)
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    done.wait()
    running.stop()
    print("rivertrace stopped", flush=True)
    return 0
