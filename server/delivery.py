"""Delivers queued alerts to the hub's callbacks: at-least-once, in order per incident and target.

A gRPC target gets ``HubReceiver.Deliver(alert)`` with a deadline; a webhook target gets an HTTP
POST of the alert as JSON with ``X-Rivertrace-Signature: sha256=<hex HMAC of the body>`` and
``X-Rivertrace-Alert-Id``. Success is a DeliverAck (or HTTP 2xx); anything else is retried with
exponential backoff and full jitter (:func:`server.outbox_store.backoff_s`). All state is in SQLite,
so pending deliveries resume after a restart of either side. One failing target is logged with its
error and retried; it never blocks the others.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import urllib.request

import grpc
from google.protobuf import json_format

from server.generated.rivertrace.v1 import alerts_pb2, alerts_pb2_grpc

from .outbox_store import DueDelivery, Outbox, TargetRow

log = logging.getLogger("rivertrace.delivery")
DELIVER_TIMEOUT_S = 5.0


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Deliverer:
    """Background thread draining the outbox every ``poll_s`` seconds."""

    def __init__(self, outbox: Outbox, poll_s: float = 0.5) -> None:
        self.outbox = outbox
        self.poll_s = poll_s
        self._channels: dict[str, grpc.Channel] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rivertrace-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the current delivery and stop (its state is already in SQLite)."""
        self._stop.set()
        self._thread.join(30)
        for ch in self._channels.values():
            ch.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for d in self.outbox.due():
                    if self._stop.is_set():
                        break
                    self.attempt(d)
            except Exception:
                log.exception("delivery loop error")
            self._stop.wait(self.poll_s)

    def attempt(self, d: DueDelivery) -> bool:
        msg = alerts_pb2.Alert.FromString(d.payload)
        msg.sequence = d.sequence
        try:
            if d.target.grpc_address:
                self._grpc(d.target, msg)
            elif d.target.webhook_url:
                self._webhook(d.target, msg)
            else:
                raise ValueError(f"target {d.target.id!r} has no endpoint")
        except Exception as exc:  # noqa: BLE001 - any failure is retried
            delay = self.outbox.failed(d.alert_id, d.target.id, d.attempts, f"{type(exc).__name__}: {exc}")
            log.info("delivery of %s to %s failed (attempt %d): %s; retry in %.1f s",
                     d.alert_id, d.target.id, d.attempts + 1, exc, delay)
            return False
        self.outbox.delivered(d.alert_id, d.target.id)
        log.info("delivered %s (#%d) to %s", d.alert_id, d.sequence, d.target.id)
        return True

    def _grpc(self, target: TargetRow, msg: alerts_pb2.Alert) -> None:
        ch = self._channels.get(target.id)
        if ch is None:
            ch = self._channels[target.id] = grpc.insecure_channel(target.grpc_address)
        ack = alerts_pb2_grpc.HubReceiverStub(ch).Deliver(msg, timeout=DELIVER_TIMEOUT_S)
        if ack.alert_id != msg.alert_id:
            raise ValueError(f"receiver acknowledged {ack.alert_id!r}, not {msg.alert_id!r}")

    def _webhook(self, target: TargetRow, msg: alerts_pb2.Alert) -> None:
        body = json_format.MessageToJson(msg, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Rivertrace-Alert-Id": msg.alert_id}
        if target.webhook_secret:
            headers["X-Rivertrace-Signature"] = sign(target.webhook_secret, body)
        req = urllib.request.Request(target.webhook_url or "", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=DELIVER_TIMEOUT_S) as resp:
            if not 200 <= resp.status < 300:
                raise ValueError(f"HTTP {resp.status}")
