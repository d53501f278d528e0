"""Build and run the gRPC server.

``create_server(config)`` returns ``(server, port)`` ready to start, so tests bind port 0 and talk
over a real loopback channel; ``serve(config)`` runs it until SIGTERM/SIGINT and then shuts down
gracefully: new calls are refused, in-flight calls get ``GRACE_S`` seconds to finish, the alert
outbox stops after its current delivery, and the database is closed.

Capacity: the thread pool has ``config.workers`` threads for unary calls plus one per stream slot
(``config.max_streams``); streams must take a slot (:mod:`server.streams`), so open streams never
starve unary calls. Connections that do not finish their handshake within
``HANDSHAKE_TIMEOUT_MS``, or that carry no call for ``MAX_IDLE_CONNECTION_MS``, are closed
(slow-loris). Health turns NOT_SERVING while the store cannot write (probed every
``HEALTH_PROBE_S``).
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import ssl
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
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

from . import convert
from .auth import AuthInterceptor
from .compute import ComputePool
from .config import Config, ConfigError
from .delivery import Deliverer
from .hj212 import start_gateway
from .incident_service import AlertServicer, AuditServicer, IncidentServicer
from .outbox_store import Outbox
from .pipeline import Broadcaster, Pipeline
from .servicers import MonitoringServicer, Networks, NetworkServicer
from .storage import Store, StoreError
from .streams import IdleReaper, StreamSlots

log = logging.getLogger("rivertrace.server")
GRACE_S = 10.0
#: a connection must finish its HTTP/2 (and TLS) handshake within this long [ms]
HANDSHAKE_TIMEOUT_MS = 10_000
#: a connection without any call for this long is closed (clients reconnect transparently) [ms]
MAX_IDLE_CONNECTION_MS = 300_000
#: keepalive pings on idle connections find dead peers: every this long [ms], answer within [ms]
KEEPALIVE_MS, KEEPALIVE_TIMEOUT_MS = 60_000, 20_000
#: how often the store is probed with a tiny durable write for the health status [s]
HEALTH_PROBE_S = 5.0
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
        for name in (*SERVICE_NAMES, ""):
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
    try:
        key, cert = config.tls_key.read_bytes(), config.tls_cert.read_bytes()
        ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
        # gRPC accepts any bytes here and fails on the first handshake: check the PEM now
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(config.tls_cert), str(config.tls_key))
        if config.tls_client_ca:
            ssl.create_default_context(cafile=str(config.tls_client_ca))
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
    except (OSError, ValueError, RuntimeError) as err:  # ssl.SSLError is an OSError
        raise ConfigError(f"[tls]: cannot use the certificate, key or client_ca: {err}") from err


class HealthProbe:
    """Keeps the health status in step with the store: NOT_SERVING while it cannot write."""

    def __init__(self, store: Store, hs: health.HealthServicer, period_s: float = HEALTH_PROBE_S) -> None:
        self.store, self.hs, self.period_s = store, hs, period_s
        self._stop = threading.Event()
        store.on_writable.append(self._set)
        self._thread = threading.Thread(target=self._run, name="rivertrace-health", daemon=True)
        self._thread.start()

    def _set(self, writable: bool) -> None:
        if self._stop.is_set():
            return
        status = health_pb2.HealthCheckResponse.SERVING if writable else health_pb2.HealthCheckResponse.NOT_SERVING
        if not writable:
            log.error("the store cannot write: health is NOT_SERVING until a probe write succeeds")
        else:
            log.warning("the store can write again: health is SERVING")
        for name in (*SERVICE_NAMES, ""):
            self.hs.set(name, status)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.store.probe()
            except Exception:
                log.debug("health probe failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def create_server(config: Config, store: Store | None = None, *, deliver: bool = True) -> Running:
    """A configured, not yet started server and its port (``config.port`` 0 picks a free port).

    Its background workers (the pipeline and, with ``deliver``, the alert deliverer) start at once.
    Raises :class:`server.config.ConfigError` for a configuration that cannot run.
    """
    config.check()
    creds = _credentials(config)
    if config.delivery_ca is not None:
        try:
            ssl.create_default_context(cafile=str(config.delivery_ca))
        except (OSError, ValueError) as err:
            raise ConfigError(f"[delivery] ca: cannot use {config.delivery_ca}: {err}") from err
    if store is None:
        try:
            store = Store(config.db)
        except (StoreError, sqlite3.Error, OSError) as err:
            raise ConfigError(f"db {str(config.db)!r}: cannot be opened for writing: {err}") from err
    networks = Networks(store)
    outbox = Outbox(store)
    for payload in outbox.unindexed_incidents():  # stored before incidents had rows (schema < 4): index them once
        outbox.put_incident(convert.incident_record(json_format.Parse(payload, incidents_pb2.Incident())))
    broadcaster = Broadcaster()
    pipeline = Pipeline(store, outbox, networks, broadcaster)
    # Trace and Forecast in worker processes (server.compute): their CPU does not hold this interpreter
    compute = ComputePool(store.path, config.heavy_calls) if config.compute_processes else None
    networks.on_put = pipeline.prepare
    # The screening trigger is as durable as the readings: at start every stored network is screened once,
    # so readings acknowledged just before a crash (SIGKILL between the ack and the screening) are not left
    # unscreened. An incident already stored is not opened twice.
    for name in store.network_names():
        pipeline.notify(name)
    limit = config.max_message_mb * 1024 * 1024
    slots = StreamSlots(config.max_streams, config.stream_roles)
    reaper = IdleReaper(config.idle_ingest_s)
    pool = futures.ThreadPoolExecutor(max_workers=config.workers + config.max_streams, thread_name_prefix="rivertrace-rpc")
    options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
               ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
               ("grpc.max_connection_idle_ms", MAX_IDLE_CONNECTION_MS),
               ("grpc.keepalive_time_ms", KEEPALIVE_MS), ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
               ("grpc.http2.min_ping_interval_without_data_ms", 10_000)]
    server = grpc.server(pool, interceptors=[AuthInterceptor(config, store, slots)], options=options)
    deliverer = Deliverer(outbox, config) if deliver else None
    network_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkServicer(config, store, networks), server)
    monitoring_pb2_grpc.add_MonitoringServiceServicer_to_server(
        MonitoringServicer(config, store, networks, on_readings=pipeline.notify, reaper=reaper), server)
    incidents_pb2_grpc.add_IncidentServiceServicer_to_server(
        IncidentServicer(config, store, networks, outbox, broadcaster, on_action=pipeline.notify, pool=compute), server)
    alerts_pb2_grpc.add_AlertServiceServicer_to_server(
        AlertServicer(config, store, outbox, on_change=deliverer.wake if deliverer else None), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(store), server)
    hs = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    names = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    address = f"{config.host}:{config.port}"
    try:
        port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    except RuntimeError as err:
        raise ConfigError(f"cannot listen on {address}: {err}") from err
    for name in (*SERVICE_NAMES, ""):
        hs.set(name, health_pb2.HealthCheckResponse.SERVING)
    if config.open_mode:
        log.warning("no [tokens] configured: open mode, every caller is admin, listening on loopback only")
    elif creds is None and config.allow_insecure and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("allow_insecure: bearer tokens travel in plaintext on %s", config.host)
    extras: dict[str, Any] = {"pipeline": pipeline, "outbox": outbox, "broadcaster": broadcaster, "reaper": reaper,
                              "health_probe": HealthProbe(store, hs), "slots": slots}
    if deliverer is not None:
        extras["deliverer"] = deliverer
    if compute is not None:
        extras["compute"] = compute
    if (gateway := start_gateway(config, store, networks, pipeline.notify)) is not None:
        extras = {"hj212": gateway, **extras}  # stopped first: it feeds the pipeline
    return Running(server, port, store, networks, hs, extras)


def serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT; shut down gracefully. A configuration that cannot run is one
    :class:`ConfigError` (the CLI prints its message)."""
    try:
        running = create_server(config)
    except ConfigError as err:
        print(f"rivertrace: {err}", file=sys.stderr, flush=True)
        return 2
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
