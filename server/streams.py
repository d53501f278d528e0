"""Long-lived streams get their own bounded capacity, so they can never starve unary calls.

The synchronous gRPC server runs every call, streams included, on one thread pool. A stream holds
its thread for as long as it is open, so a pool shared without limits is frozen by as many idle
streams as it has threads. Here the pool has ``workers`` threads for unary calls *plus* one per
stream slot, and a stream must take a slot before it runs: at most ``max_streams`` in all and
``stream_roles[role]`` per role. A stream beyond its role's share is refused at once with
RESOURCE_EXHAUSTED (the client retries later), so the ``workers`` threads stay free for unary calls
whatever the streams do. Idle streams cost no CPU: watchers sleep on their queue and are woken by
cancellation; an ingest stream silent for ``idle_ingest_s`` is closed by the :class:`IdleReaper`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

log = logging.getLogger("rivertrace.server")


class StreamSlots:
    """Counting semaphore of open streams, in total and per role (non-blocking)."""

    def __init__(self, total: int, per_role: dict[str, int]) -> None:
        self.total, self.per_role = total, dict(per_role)
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, role: str) -> str | None:
        """Take a slot; returns None, or why none is free."""
        with self._lock:
            n = sum(self._open.values())
            if n >= self.total:
                return f"the server has {self.total} streams open, its limit"
            if self._open.get(role, 0) >= self.per_role.get(role, 0):
                return f"role {role!r} has {self._open.get(role, 0)} streams open, its limit"
            self._open[role] = self._open.get(role, 0) + 1
            return None

    def release(self, role: str) -> None:
        with self._lock:
            self._open[role] = max(0, self._open.get(role, 0) - 1)

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())


def limit_stream(handler: grpc.RpcMethodHandler, slots: StreamSlots, role: str) -> grpc.RpcMethodHandler:
    """The handler, taking a stream slot for its whole life (RESOURCE_EXHAUSTED when none is free)."""
    if not handler.response_streaming:
        return handler
    inner = handler.stream_stream if handler.request_streaming else handler.unary_stream

    def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        why = slots.try_acquire(role)
        if why is not None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many open streams: {why}; retry later")
        try:
            yield from inner(request, context)
        finally:
            slots.release(role)

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.request_streaming:
        return grpc.stream_stream_rpc_method_handler(run, **kw)
    return grpc.unary_stream_rpc_method_handler(run, **kw)


class IdleReaper:
    """Closes streams that have been silent for too long (one thread for all of them).

    A stream registers its context and calls :meth:`touch` on every message; one that has not been
    touched for ``idle_s`` is cancelled (the client sees CANCELLED; the log says why).
    """

    def __init__(self, idle_s: float, period_s: float = 1.0) -> None:
        self.idle_s, self.period_s = idle_s, period_s
        self._last: dict[int, tuple[float, Any, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rivertrace-idle-reaper", daemon=True)
        self._thread.start()

    def register(self, context: grpc.ServicerContext, what: str) -> Callable[[], None]:
        """Start watching a stream; returns its ``touch`` function."""
        key = id(context)
        with self._lock:
            self._last[key] = (time.monotonic(), context, what)

        def touch() -> None:
            with self._lock:
                if key in self._last:
                    self._last[key] = (time.monotonic(), context, what)
        return touch

    def unregister(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            self._last.pop(id(context), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            with self._lock:
                idle = [(k, c, w) for k, (t, c, w) in self._last.items() if now - t > self.idle_s]
                for k, _c, _w in idle:
                    del self._last[k]
            for _k, context, what in idle:
                log.info("closing %s: idle for more than %.0f s", what, self.idle_s)
                try:
                    context.cancel()
                except Exception:
                    log.debug("cancel of an idle stream failed", exc_info=True)
