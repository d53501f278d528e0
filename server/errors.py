"""One table from domain exceptions to gRPC status codes, and the rich error details.

Anything a client sent that is wrong is INVALID_ARGUMENT (with ``google.rpc.BadRequest`` field
violations naming the field), NOT_FOUND, FAILED_PRECONDITION or ALREADY_EXISTS; INTERNAL is kept
for our own bugs, which are logged with their traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from hydrology.exceptions import (
    HydraulicsError,
    HydrologyError,
    NetworkFormatError,
    NetworkTopologyError,
    NetworkValidationError,
    UnknownElementError,
    UnknownModelError,
)
from tracer.exceptions import TracerError
from tracer.incident.actions import IllegalTransition, InvalidIncidentArgument

from .endpoints import EndpointError
from .outbox_store import NotOwnerError
from .storage import NotFoundError, StorageFullError, StorageUnavailableError

log = logging.getLogger("rivertrace.server")


class ServiceError(Exception):
    """Raised by servicers with an explicit status and optional field violations."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.violations = list(violations)


#: exception class -> status code; the first matching entry (in order) wins
STATUS_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (StorageFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StorageUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (NotOwnerError, grpc.StatusCode.PERMISSION_DENIED),
    (EndpointError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnknownElementError, grpc.StatusCode.NOT_FOUND),
    (NetworkFormatError, grpc.StatusCode.INVALID_ARGUMENT),
    (NetworkValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (NetworkTopologyError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownModelError, grpc.StatusCode.INVALID_ARGUMENT),
    # the incident domain: before TracerError, of which both are subclasses (InvalidIncidentArgument is a ValueError too)
    (InvalidIncidentArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (IllegalTransition, grpc.StatusCode.FAILED_PRECONDITION),
    (HydraulicsError, grpc.StatusCode.FAILED_PRECONDITION),
    (TracerError, grpc.StatusCode.FAILED_PRECONDITION),
    (HydrologyError, grpc.StatusCode.INVALID_ARGUMENT),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)
#: budgets that keep a status under gRPC's 8 KB trailer limit whatever the client sent: the message
#: (UTF-8 bytes; percent-encoded in the grpc-message header, up to 3x) and the serialised
#: BadRequest (base64 in grpc-status-details-bin, 4/3x, which repeats the message) [bytes]
MAX_MESSAGE_BYTES = 500
MAX_DETAILS_BYTES = 2000
MAX_FIELD_CHARS, MAX_DESCRIPTION_CHARS = 120, 200


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _violations(exc: BaseException) -> list[tuple[str, str]]:
    if isinstance(exc, ServiceError):
        return exc.violations
    if isinstance(exc, EndpointError):
        return [(exc.field, str(exc))]
    if isinstance(exc, InvalidIncidentArgument):  # its message starts with the field: "status: unknown ..."
        m = re.match(r"([a-z_]+): ", str(exc))
        return [(m.group(1), str(exc))] if m else []
    problems = getattr(exc, "problems", None) or []
    out = []
    for p in problems:
        where = f"{p.element}[{p.id}]" if p.id else p.element
        out.append((f"{where}.{p.field}" if p.field else where, p.message))
    return out


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (on a character boundary), marked when cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", errors="ignore") + "..."


def _cut_middle(text: str, max_bytes: int) -> str:
    """``text`` cut in the middle to at most ``max_bytes`` UTF-8 bytes: a field path keeps its
    start and its last part (``reaches[<long id>...].length_m``)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    half = (max_bytes - 3) // 2
    return data[:half].decode("utf-8", errors="ignore") + "..." + data[-half:].decode("utf-8", errors="ignore")


def capped_details(violations: Sequence[tuple[str, str]], budget: int = MAX_DETAILS_BYTES) -> error_details_pb2.BadRequest:
    """A BadRequest of at most ``budget`` serialised bytes: the first violations in full (field and
    description cut to a few hundred characters), then one summary naming how many more there are
    and the next fields, so a client always sees the first fields whatever their number."""
    br = error_details_pb2.BadRequest()
    reserve = 400  # room for the summary entry
    for i, (f, d) in enumerate(violations):
        v = error_details_pb2.BadRequest.FieldViolation(field=_cut_middle(f, MAX_FIELD_CHARS), description=_cut(d, MAX_DESCRIPTION_CHARS))
        if br.ByteSize() + v.ByteSize() + 4 > budget - reserve:
            rest = violations[i:]
            names = ", ".join(_cut(x[0], 40) for x in rest[:5])
            br.field_violations.add(field="(more)", description=_cut(
                f"{len(rest)} more violation(s) not listed (of {len(violations)}); next: {names}", reserve - 20))
            break
        br.field_violations.append(v)
    return br


def abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    """Abort the call with the status the table gives and BadRequest details (never returns).

    The status always fits gRPC's trailer limit (see :data:`MAX_MESSAGE_BYTES`)."""
    code = exc.code if isinstance(exc, ServiceError) else status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("internal error", exc_info=exc)
        message = "internal error (logged)"
    else:
        message = str(exc)
    details = []
    viol = _violations(exc)
    if viol:
        any_msg: Any = status_pb2.Status().details.add()
        any_msg.Pack(capped_details(viol))
        details.append(any_msg)
    st = status_pb2.Status(code=getattr(code_pb2, code.name), message=_cut(message, MAX_MESSAGE_BYTES), details=details)
    context.abort_with_status(rpc_status.to_status(st))


class UndecodableRequest:
    """Stands for a request message that could not be parsed (malformed bytes, invalid UTF-8)."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.type_name, self.error = type_name, error

    def service_error(self) -> ServiceError:
        return bad_request(f"the request is not a valid {self.type_name} message (malformed bytes or a string field "
                           "that is not UTF-8)", [("request", f"not a valid {self.type_name}")])


def _lenient(deserializer: Any) -> Any:
    if deserializer is None:
        return None
    name = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    type_name = name.full_name if name is not None else "request"

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as err:  # noqa: BLE001 - DecodeError and friends: the client's bytes
            return UndecodableRequest(type_name, err)
    return parse


def tolerant(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler, answering INVALID_ARGUMENT (not gRPC's INTERNAL "Exception deserializing
    request!") to a request that does not parse."""
    if handler is None or handler.request_deserializer is None:
        return handler
    kw = {"request_deserializer": _lenient(handler.request_deserializer), "response_serializer": handler.response_serializer}

    def check(request: Any) -> Any:
        if isinstance(request, UndecodableRequest):
            raise request.service_error()
        return request

    def checked_iter(requests: Any) -> Any:
        for r in requests:
            yield check(r)

    if handler.request_streaming:
        inner = handler.stream_stream if handler.response_streaming else handler.stream_unary

        def run_stream(requests: Any, context: grpc.ServicerContext) -> Any:
            return inner(checked_iter(requests), context)

        make = grpc.stream_stream_rpc_method_handler if handler.response_streaming else grpc.stream_unary_rpc_method_handler
        return make(run_stream, **kw)
    inner = handler.unary_stream if handler.response_streaming else handler.unary_unary

    def run_unary(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, UndecodableRequest):
            abort(context, request.service_error())
        return inner(request, context)

    make = grpc.unary_stream_rpc_method_handler if handler.response_streaming else grpc.unary_unary_rpc_method_handler
    return make(run_unary, **kw)


def bad_request(message: str, violations: Sequence[tuple[str, str]]) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, violations)
