"""Delivers queued alerts to the hubs' callbacks: at-least-once, in order per incident and target,
each target isolated from the others.

A gRPC target gets ``HubReceiver.Deliver(alert)`` (TLS when the target says so, with the roots of
``[delivery] ca`` and the server's own certificate as client certificate when it has one); a
webhook target gets an HTTP POST of the alert as JSON with ``X-Rivertrace-Signature: sha256=<hex
HMAC of the body>`` and ``X-Rivertrace-Alert-Id``. Success is a DeliverAck naming the alert, or an
HTTP 2xx status; a redirect (3xx) is a failure (the body reached nobody), as is anything else.

Isolation: every target with work has its own worker thread, and every attempt has a hard
deadline (connect timeout + read timeout, for the whole exchange: a webhook answering one byte
every few seconds is cut off), so a slow, hung or dead hub only delays itself. Failures are
retried with capped exponential backoff and full jitter (:func:`server.outbox_store.backoff_s`), so
a hub that comes back is served within ``backoff_cap_s`` plus one attempt; a delivery failing for
``dead_letter_after_s`` is dead-lettered (visible in ListDeliveries, replayed by an admin). The
worker reads the target's row before every attempt, so a re-registered address is used at once.
All state is in SQLite: pending deliveries resume after a restart of either side.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format

from server.generated.rivertrace.v1 import alerts_pb2, alerts_pb2_grpc

from .outbox_store import DueDelivery, Outbox, TargetRow

log = logging.getLogger("rivertrace.delivery")
#: gRPC's own reconnect backoff grows to 120 s by default, so a hub that was down for minutes would
#: be refused by the channel long after it came back: keep it short [ms]
CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 500), ("grpc.min_reconnect_backoff_ms", 500),
                   ("grpc.max_reconnect_backoff_ms", 5000))
#: most targets served at the same time (one thread each); others wait for a worker to finish [-]
MAX_WORKERS = 64
#: largest HTTP status line read from a webhook [bytes]
MAX_STATUS_LINE = 1024


class DeliveryFailed(Exception):
    """An attempt that did not reach the hub (the message says how)."""


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_json(url: str, body: bytes, headers: dict[str, str], connect_timeout_s: float, read_timeout_s: float,
              ssl_context: ssl.SSLContext | None = None) -> int:
    """POST ``body`` and return the HTTP status, within a hard deadline.

    ``connect_timeout_s`` bounds the TCP (and TLS) connection; ``read_timeout_s`` bounds sending the
    request and reading the status line, in total: a server trickling bytes is cut off when the time
    is up, whatever the pace. Redirects are not followed. Raises :class:`DeliveryFailed`.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout_s)
    except OSError as err:
        raise DeliveryFailed(f"connect to {host}:{port}: {err}") from err
    deadline = time.monotonic() + read_timeout_s
    try:
        if parts.scheme == "https":
            ctx = ssl_context or ssl.create_default_context()
            sock.settimeout(connect_timeout_s)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body
        buf = b""
        view = memoryview(data)
        while view:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            n = sock.send(view)
            view = view[n:]
            if time.monotonic() > deadline:
                raise DeliveryFailed(f"sending to {host}:{port} took more than {read_timeout_s} s")
        while b"\r\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryFailed(f"no HTTP status line from {host}:{port} within {read_timeout_s} s")
            sock.settimeout(left)
            chunk = sock.recv(256)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_STATUS_LINE:
                raise DeliveryFailed(f"{host}:{port} sent no HTTP status line in {MAX_STATUS_LINE} bytes")
    except TimeoutError as err:
        raise DeliveryFailed(f"{host}:{port}: no complete HTTP status line within {read_timeout_s} s") from err
    except (OSError, ssl.SSLError) as err:
        raise DeliveryFailed(f"{host}:{port}: {type(err).__name__}: {err}") from err
    finally:
        sock.close()
    line = buf.split(b"\r\n", 1)[0].decode("latin-1")
    fields = line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise DeliveryFailed(f"{host}:{port} did not answer HTTP: {line[:80]!r}")
    return int(fields[1])


class Deliverer:
    """A supervisor thread starting one worker thread per target with deliveries due.

    ``config`` supplies the timeouts, the backoff cap, the dead-letter age and the TLS settings
    (any object with those attributes: :class:`server.config.Config`).
    """

    def __init__(self, outbox: Outbox, config: object, poll_s: float | None = None) -> None:
        self.outbox = outbox
        self.poll_s = poll_s if poll_s is not None else float(getattr(config, "outbox_poll_s", 0.5))
        self.connect_timeout_s = float(getattr(config, "connect_timeout_s", 3.0))
        self.read_timeout_s = float(getattr(config, "read_timeout_s", 10.0))
        self.backoff_cap_s = float(getattr(config, "backoff_cap_s", 30.0))
        self.dead_letter_after_s = float(getattr(config, "dead_letter_after_s", 86400.0))
        ca = getattr(config, "delivery_ca", None)
        cert, key = getattr(config, "tls_cert", None), getattr(config, "tls_key", None)
        self._ca = Path(ca).read_bytes() if ca else None
        self._client_cert = (Path(key).read_bytes(), Path(cert).read_bytes()) if cert and key else None
        self._ssl = ssl.create_default_context(cadata=self._ca.decode() if self._ca else None)
        if cert and key:
            self._ssl.load_cert_chain(str(cert), str(key))
        self._channels: dict[str, tuple[tuple, grpc.Channel]] = {}
        self._channels_lock = threading.Lock()
        self._workers: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rivertrace-delivery", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries now (after an enqueue or a replay)."""
        self._wake.set()

    def stop(self) -> None:
        """Let each worker finish its current attempt and stop (their state is already in SQLite)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        for w in list(self._workers.values()):
            w.join(self.connect_timeout_s + self.read_timeout_s + 1)
        with self._channels_lock:
            for _key, ch in self._channels.values():
                ch.close()
            self._channels.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._workers = {t: w for t, w in self._workers.items() if w.is_alive()}
                for target_id in self.outbox.due_targets():
                    w = self._workers.get(target_id)
                    if w is None and len(self._workers) >= MAX_WORKERS:
                        break  # the busy workers finish their attempts within their deadlines
                    if w is None:
                        w = threading.Thread(target=self._work, args=(target_id,), name=f"rivertrace-deliver-{target_id[:40]}",
                                             daemon=True)
                        self._workers[target_id] = w
                        w.start()
            except Exception:
                log.exception("delivery supervisor error")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _work(self, target_id: str) -> None:
        """Deliver what is due to one target, until nothing is due now."""
        while not self._stop.is_set():
            try:
                due = self.outbox.due(limit=50, target_id=target_id)
            except Exception:
                log.exception("delivery worker for %s: could not read the outbox", target_id)
                return
            if not due:
                return
            for d in due:
                if self._stop.is_set():
                    return
                self.attempt(d)

    def attempt(self, d: DueDelivery) -> bool:
        msg = alerts_pb2.Alert.FromString(d.payload)
        msg.sequence = d.sequence
        target = self.outbox.target(d.target.id) or d.target  # re-registration takes effect at once
        try:
            if target.grpc_address:
                self._grpc(target, msg)
            elif target.webhook_url:
                self._webhook(target, msg)
            else:
                raise DeliveryFailed(f"target {target.id!r} has no endpoint")
        except Exception as exc:  # noqa: BLE001 - any failure is retried
            error = f"{type(exc).__name__}: {exc}"
            try:
                delay = self.outbox.failed(d.alert_id, target.id, d.attempts, error, cap_s=self.backoff_cap_s,
                                           dead_after_s=self.dead_letter_after_s, queued_at_ns=d.queued_at_ns)
            except Exception:
                log.exception("could not record the failed delivery of %s to %s", d.alert_id, target.id)
                return False
            if delay is None:
                log.error("delivery of %s to %s dead-lettered after %d attempts: %s (replay with ReplayDeliveries)",
                          d.alert_id, target.id, d.attempts + 1, error)
            else:
                log.warning("delivery of %s to %s failed (attempt %d): %s; retry in %.1f s",
                            d.alert_id, target.id, d.attempts + 1, error, delay)
            return False
        self.outbox.delivered(d.alert_id, target.id)
        log.info("delivered %s (#%d) to %s", d.alert_id, d.sequence, target.id)
        return True

    def _channel(self, target: TargetRow) -> grpc.Channel:
        key = (target.grpc_address, target.tls)
        with self._channels_lock:
            have = self._channels.get(target.id)
            if have is not None and have[0] == key:
                return have[1]
            if have is not None:
                have[1].close()
            if target.tls:
                key_pem, cert_pem = self._client_cert or (None, None)
                creds = grpc.ssl_channel_credentials(root_certificates=self._ca, private_key=key_pem, certificate_chain=cert_pem)
                ch = grpc.secure_channel(target.grpc_address or "", creds, options=CHANNEL_OPTIONS)
            else:
                ch = grpc.insecure_channel(target.grpc_address or "", options=CHANNEL_OPTIONS)
            self._channels[target.id] = (key, ch)
            return ch

    def _drop_channel(self, target_id: str, ch: grpc.Channel) -> None:
        with self._channels_lock:
            have = self._channels.get(target_id)
            if have is not None and have[1] is ch:
                del self._channels[target_id]
        ch.close()

    def _grpc(self, target: TargetRow, msg: alerts_pb2.Alert) -> None:
        ch = self._channel(target)
        try:
            ack = alerts_pb2_grpc.HubReceiverStub(ch).Deliver(msg, timeout=self.connect_timeout_s + self.read_timeout_s)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                # a channel that failed to connect sits in reconnect backoff and refuses calls at once, even
                # after the hub is back: the next attempt (a retry, an admin's replay) gets a fresh channel
                self._drop_channel(target.id, ch)
            raise
        if ack.alert_id != msg.alert_id:
            raise DeliveryFailed(f"receiver acknowledged {ack.alert_id!r}, not {msg.alert_id!r}")

    def _webhook(self, target: TargetRow, msg: alerts_pb2.Alert) -> None:
        body = json_format.MessageToJson(msg, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Rivertrace-Alert-Id": msg.alert_id}
        if target.webhook_secret:
            headers["X-Rivertrace-Signature"] = sign(target.webhook_secret, body)
        status = post_json(target.webhook_url or "", body, headers, self.connect_timeout_s, self.read_timeout_s, self._ssl)
        if 300 <= status < 400:
            raise DeliveryFailed(f"HTTP {status}: a redirect is not a delivery (register the final URL)")
        if not 200 <= status < 300:
            raise DeliveryFailed(f"HTTP {status}")
