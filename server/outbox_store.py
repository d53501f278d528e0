"""Incidents and the alert outbox in the service's SQLite file (schema in :mod:`server.storage`).

An alert is written once, with a stable id and a per-incident sequence number, together with one
delivery row per target whose scope covers it, in the same transaction: nothing is lost between
"incident changed" and "alert queued". Deliveries are retried with exponential backoff and full
jitter until the target acknowledges; per incident and target, alerts go out in sequence order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from .storage import NotFoundError, Store, now_ns

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 600.0


@dataclass(frozen=True, slots=True)
class TargetRow:
    id: str
    grpc_address: str | None
    webhook_url: str | None
    webhook_secret: str | None
    network: str | None
    departments: tuple[str, ...]
    created_at_ns: int

    def covers(self, network: str, departments: set[str]) -> bool:
        """Whether an alert of this network, with actions for these departments, goes to this target."""
        if self.network and self.network != network:
            return False
        return not self.departments or bool(set(self.departments) & departments)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    alert_id: str
    target: TargetRow
    incident_id: str
    sequence: int
    attempts: int
    payload: bytes


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempts`` [s]: full jitter in [0, min(cap, base 2^attempts)]
    (Brooker 2015, "Exponential backoff and jitter", AWS Architecture Blog)."""
    r = rng or random
    return r.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** attempts))


class Outbox:
    """Incident rows, targets, alerts and deliveries on a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ----------------------------------------------------------------- incidents
    def put_incident(self, incident_id: str, network: str, version: int, state: str, payload: str) -> None:
        with self.store.transaction() as con:
            con.execute("INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?)",
                        (incident_id, network, version, state, payload, now_ns()))

    def get_incident(self, incident_id: str) -> tuple[str, int, str, str]:
        row = self.store._reader().execute(
            "SELECT network, network_version, state, payload FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"incident {incident_id!r} is not stored")
        return row[0], int(row[1]), row[2], row[3]

    def incidents(self, network: str | None = None, state: str | None = None) -> list[tuple[str, str, str]]:
        q, args = "SELECT id, state, payload FROM incidents WHERE 1=1", []
        if network:
            q, args = q + " AND network = ?", [*args, network]
        if state:
            q, args = q + " AND state = ?", [*args, state]
        return list(self.store._reader().execute(q + " ORDER BY updated_at_ns", args))

    def has_incident(self, incident_id: str) -> bool:
        return self.store._reader().execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone() is not None

    # ----------------------------------------------------------------- targets
    def put_target(self, t: TargetRow) -> None:
        with self.store.transaction() as con:
            con.execute("INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (t.id, t.grpc_address, t.webhook_url, t.webhook_secret, t.network, json.dumps(list(t.departments)),
                         t.created_at_ns))

    def remove_target(self, target_id: str) -> None:
        with self.store.transaction() as con:
            if con.execute("DELETE FROM targets WHERE id = ?", (target_id,)).rowcount == 0:
                raise NotFoundError(f"target {target_id!r} is not registered")
            con.execute("DELETE FROM deliveries WHERE target_id = ? AND state != 'delivered'", (target_id,))

    def targets(self) -> list[TargetRow]:
        rows = self.store._reader().execute("SELECT * FROM targets ORDER BY id")
        return [TargetRow(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), int(r[6])) for r in rows]

    # ----------------------------------------------------------------- alerts and deliveries
    def enqueue(self, alert_id: str, incident_id: str, payload: bytes, network: str, departments: set[str]) -> int:
        """Queue an alert for every covering target; returns its sequence (idempotent on alert_id)."""
        with self.store.transaction() as con:
            old = con.execute("SELECT sequence FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
            if old is not None:
                return int(old[0])
            seq = con.execute("SELECT COALESCE(MAX(sequence), 0) + 1 FROM alerts WHERE incident_id = ?",
                              (incident_id,)).fetchone()[0]
            t = now_ns()
            con.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?)", (alert_id, incident_id, seq, t, payload))
            for target in self.targets():
                if target.covers(network, departments):
                    con.execute("INSERT INTO deliveries VALUES (?, ?, 'pending', 0, ?, NULL, NULL)", (alert_id, target.id, t))
            return int(seq)

    def due(self, limit: int = 100) -> list[DueDelivery]:
        """Deliveries to attempt now: per (incident, target) only the lowest undelivered sequence."""
        rows = self.store._reader().execute(
            """SELECT d.alert_id, d.target_id, a.incident_id, a.sequence, d.attempts, a.payload, d.next_attempt_ns
               FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id
               WHERE d.state != 'delivered' AND a.sequence = (
                   SELECT MIN(a2.sequence) FROM deliveries d2 JOIN alerts a2 ON a2.alert_id = d2.alert_id
                   WHERE d2.target_id = d.target_id AND a2.incident_id = a.incident_id AND d2.state != 'delivered')
               ORDER BY d.next_attempt_ns LIMIT ?""", (limit,)).fetchall()
        targets = {t.id: t for t in self.targets()}
        t_now = now_ns()
        return [DueDelivery(r[0], targets[r[1]], r[2], int(r[3]), int(r[4]), bytes(r[5]))
                for r in rows if r[6] <= t_now and r[1] in targets]

    def delivered(self, alert_id: str, target_id: str) -> None:
        with self.store.transaction() as con:
            con.execute("UPDATE deliveries SET state = 'delivered', delivered_at_ns = ?, last_error = NULL "
                        "WHERE alert_id = ? AND target_id = ?", (now_ns(), alert_id, target_id))

    def failed(self, alert_id: str, target_id: str, attempts: int, error: str, rng: random.Random | None = None) -> float:
        """Record a failed attempt; returns the delay before the next one [s]."""
        delay = backoff_s(attempts, rng)
        with self.store.transaction() as con:
            con.execute("UPDATE deliveries SET state = 'retrying', attempts = ?, next_attempt_ns = ?, last_error = ? "
                        "WHERE alert_id = ? AND target_id = ?",
                        (attempts + 1, now_ns() + int(delay * 1e9), error[:500], alert_id, target_id))
        return delay

    def deliveries(self, incident_id: str | None = None, target_id: str | None = None) -> list[tuple]:
        q = ("SELECT d.alert_id, d.target_id, a.incident_id, a.sequence, d.state, d.attempts, d.next_attempt_ns, "
             "d.last_error, d.delivered_at_ns FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id WHERE 1=1")
        args: list[str] = []
        if incident_id:
            q, args = q + " AND a.incident_id = ?", [*args, incident_id]
        if target_id:
            q, args = q + " AND d.target_id = ?", [*args, target_id]
        return list(self.store._reader().execute(q + " ORDER BY a.incident_id, a.sequence, d.target_id", args))
