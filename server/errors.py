"""One table from domain exceptions to gRPC status codes, and the rich error details.

Anything a client sent that is wrong is INVALID_ARGUMENT (with ``google.rpc.BadRequest`` field
violations naming the field), NOT_FOUND, FAILED_PRECONDITION or ALREADY_EXISTS; INTERNAL is kept
for our own bugs, which are logged with their traceback.
"""

from __future__ import annotations

import logging
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

from .storage import NotFoundError

log = logging.getLogger("rivertrace.server")


class ServiceError(Exception):
    """Raised by servicers with an explicit status and optional field violations."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.violations = list(violations)


#: exception class -> status code; the first matching entry (in order) wins
STATUS_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnknownElementError, grpc.StatusCode.NOT_FOUND),
    (NetworkFormatError, grpc.StatusCode.INVALID_ARGUMENT),
    (NetworkValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (NetworkTopologyError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownModelError, grpc.StatusCode.INVALID_ARGUMENT),
    (HydraulicsError, grpc.StatusCode.FAILED_PRECONDITION),
    (TracerError, grpc.StatusCode.FAILED_PRECONDITION),
    (HydrologyError, grpc.StatusCode.INVALID_ARGUMENT),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


def status_for(exc: BaseException) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _violations(exc: BaseException) -> list[tuple[str, str]]:
    if isinstance(exc, ServiceError):
        return exc.violations
    problems = getattr(exc, "problems", None) or []
    out = []
    for p in problems:
        where = f"{p.element}[{p.id}]" if p.id else p.element
        out.append((f"{where}.{p.field}" if p.field else where, p.message))
    return out


def abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    """Abort the call with the status the table gives and BadRequest details (never returns)."""
    code = exc.code if isinstance(exc, ServiceError) else status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error", exc_info=exc)
        message = "internal error (logged)"
    else:
        message = str(exc)
    details = []
    viol = _violations(exc)
    if viol:
        br = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in viol[:200]])
        any_msg: Any = status_pb2.Status().details.add()
        any_msg.Pack(br)
        details.append(any_msg)
    st = status_pb2.Status(code=getattr(code_pb2, code.name), message=message[:2000], details=details)
    context.abort_with_status(rpc_status.to_status(st))


def bad_request(message: str, violations: Sequence[tuple[str, str]]) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, violations)
