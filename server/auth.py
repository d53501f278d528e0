"""Bearer-token authentication and role authorisation, as one server interceptor.

``authorization: Bearer <token>`` metadata maps to a client and role (config ``[tokens]``);
:data:`METHOD_ROLES` says which roles may call each method. Health checking and reflection are
open. In open mode (no tokens configured, loopback only) every caller is ``admin``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from .config import Client, Config
from .errors import tolerant
from .streams import StreamSlots, limit_stream

ALL = frozenset({"admin", "bureau", "hub", "modeller"})
WRITE_NETWORK = frozenset({"admin", "bureau", "modeller"})
OPERATE = frozenset({"admin", "bureau"})

#: full method name -> roles allowed; methods not listed are refused (deny by default)
METHOD_ROLES: dict[str, frozenset[str]] = {
    "/rivertrace.v1.NetworkService/PutNetwork": WRITE_NETWORK,
    "/rivertrace.v1.NetworkService/UpdateFlows": WRITE_NETWORK,
    "/rivertrace.v1.NetworkService/GetNetwork": ALL,
    "/rivertrace.v1.NetworkService/ValidateNetwork": ALL,
    "/rivertrace.v1.NetworkService/ListFeatures": ALL,
    "/rivertrace.v1.MonitoringService/IngestReadings": OPERATE,
    "/rivertrace.v1.MonitoringService/ReportOperations": OPERATE,
    "/rivertrace.v1.MonitoringService/ListReadings": ALL,
    "/rivertrace.v1.IncidentService/ListIncidents": ALL,
    "/rivertrace.v1.IncidentService/GetIncident": ALL,
    "/rivertrace.v1.IncidentService/WatchIncidents": ALL,
    "/rivertrace.v1.IncidentService/Trace": frozenset({"admin", "bureau", "modeller"}),
    "/rivertrace.v1.IncidentService/Forecast": frozenset({"admin", "bureau", "modeller"}),
    "/rivertrace.v1.IncidentService/Plan": frozenset({"admin", "bureau"}),
    "/rivertrace.v1.IncidentService/UpdateAction": frozenset({"admin", "bureau", "hub"}),
    "/rivertrace.v1.IncidentService/CloseIncident": OPERATE,
    "/rivertrace.v1.AlertService/RegisterTarget": frozenset({"admin", "hub"}),
    "/rivertrace.v1.AlertService/RemoveTarget": frozenset({"admin", "hub"}),
    "/rivertrace.v1.AlertService/ListTargets": frozenset({"admin", "bureau", "hub"}),
    "/rivertrace.v1.AlertService/ListDeliveries": frozenset({"admin", "bureau", "hub"}),
    "/rivertrace.v1.AlertService/ReplayDeliveries": frozenset({"admin"}),
    "/rivertrace.v1.AlertService/GetAlert": frozenset({"admin", "bureau", "hub"}),
    "/rivertrace.v1.AuditService/ListAudit": frozenset({"admin"}),
}
log = logging.getLogger("rivertrace.server")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
OPEN_CLIENT = Client("local", "admin")


def client_of(config: Config, metadata: Any) -> Client | None:
    """The client a call's metadata authenticates, or None."""
    if config.open_mode:
        return OPEN_CLIENT
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            token = value[7:].strip()
            return config.tokens.get(token) if token else None
    return None


def _deny(code: grpc.StatusCode, message: str, handler: grpc.RpcMethodHandler, audit: Callable[[], None] | None
          ) -> grpc.RpcMethodHandler:
    def abort(_request: Any, context: grpc.ServicerContext) -> None:
        if audit is not None:
            try:
                audit()  # on the call's own thread, not the server's dispatch thread
            except Exception:
                log.warning("could not audit a denied call", exc_info=True)
        context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class AuthInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED without a valid token; PERMISSION_DENIED when the role may not call the method.

    Every denied call leaves one audit row (with ``store``); streams take a slot of ``slots``.
    """

    def __init__(self, config: Config, store: Any = None, slots: StreamSlots | None = None) -> None:
        self.config, self.store, self.slots = config, store, slots

    def _audit(self, client: Client | None, method: str, code: grpc.StatusCode) -> Callable[[], None] | None:
        if self.store is None:
            return None
        name, role = (client.name, client.role) if client else (None, None)
        return lambda: self.store.audit(name, role, method.rsplit("/", 1)[-1], f"denied: {code.name} {method}")

    def intercept_service(self, continuation: Callable[[Any], grpc.RpcMethodHandler],
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        method = details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        client = client_of(self.config, details.invocation_metadata)
        if client is None:
            code = grpc.StatusCode.UNAUTHENTICATED
            return _deny(code, "missing or unknown bearer token (metadata 'authorization: Bearer <token>')", handler,
                         self._audit(None, method, code))
        allowed = METHOD_ROLES.get(method)
        if allowed is None or client.role not in allowed:
            code = grpc.StatusCode.PERMISSION_DENIED
            return _deny(code, f"role {client.role!r} ({client.name}) may not call {method}", handler,
                         self._audit(client, method, code))
        handler = tolerant(handler)
        if self.slots is not None and handler.response_streaming:
            return limit_stream(handler, self.slots, client.role)
        return handler
