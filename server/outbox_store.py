"""Incidents and the alert outbox in the service's SQLite file (schema in :mod:`server.storage`).

An alert is written once, with a stable id and a per-incident sequence number, together with one
delivery row per target whose scope covers it, in the same transaction: nothing is lost between
"incident changed" and "alert queued". Deliveries are retried with exponential backoff (capped) and full
jitter until the target acknowledges, or dead-lettered after failing for a configured time (an
admin replays them); per incident and target, alerts go out in sequence order. Targets are owned
by the client that registered them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from .storage import Audit, NotFoundError, Store, StoreError, now_ns

BACKOFF_BASE_S = 1.0
#: the longest wait between two attempts [s]: a hub that comes back is retried within this long
BACKOFF_CAP_S = 30.0
#: delivery states that still await an attempt (a dead-lettered delivery waits for an admin's replay)
OPEN_STATES = ("pending", "retrying")


class NotOwnerError(StoreError, PermissionError):
    """A client that may not change a target it does not own."""


@dataclass(frozen=True, slots=True)
class TargetRow:
    id: str
    grpc_address: str | None
    webhook_url: str | None
    webhook_secret: str | None
    network: str | None
    departments: tuple[str, ...]
    created_at_ns: int
    owner: str | None = None
    tls: bool = False

    def covers(self, network: str, departments: set[str]) -> bool:
        """Whether an alert of this network, with actions for these departments, goes to this target."""
        if self.network and self.network != network:
            return False
        return not self.departments or bool(set(self.departments) & departments)

    @property
    def endpoint(self) -> tuple[str | None, str | None, bool]:
        return self.grpc_address, self.webhook_url, self.tls


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """What :meth:`Outbox.put_incident` stores of one incident (made by :func:`server.convert.incident_record`).
    Times in ns since the epoch (UTC); ``actions``: (action id, kind, department, target, status, deadline ns,
    last change ns); ``candidates``: (id, kind, probability) best first; ``versions``: (version, created ns,
    reasons, ranking)."""

    id: str
    network: str
    network_version: int
    state: str
    payload: str
    first_station: str
    parameter: str
    start_ns: int
    end_ns: int | None
    version: int
    top_candidate: str | None
    top_probability: float | None
    merged_into: str | None
    actions: tuple[tuple[str, str, str | None, str, str, int | None, int | None], ...]
    candidates: tuple[tuple[str, str, float], ...]
    versions: tuple[tuple[int, int, list[str], list[str]], ...]


@dataclass(frozen=True, slots=True)
class ActionRow:
    incident_id: str
    action_id: str
    kind: str
    department: str | None
    target: str
    status: str
    deadline_ns: int | None
    changed_at_ns: int | None


def _target(r: tuple) -> TargetRow:
    return TargetRow(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), int(r[6]), r[7], bool(r[8]))


@dataclass(frozen=True, slots=True)
class DueDelivery:
    alert_id: str
    target: TargetRow
    incident_id: str
    sequence: int
    attempts: int
    payload: bytes
    queued_at_ns: int = 0


def backoff_s(attempts: int, rng: random.Random | None = None, cap_s: float = BACKOFF_CAP_S) -> float:
    """Delay before retry number ``attempts`` [s]: full jitter in [0, min(cap, base 2^attempts)]
    (Brooker 2015, "Exponential backoff and jitter", AWS Architecture Blog)."""
    r = rng or random
    return r.uniform(0.0, min(cap_s, BACKOFF_BASE_S * 2.0 ** min(attempts, 60)))


class Outbox:
    """Incident rows, targets, alerts and deliveries on a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ----------------------------------------------------------------- incidents
    def put_incident(self, rec: IncidentRecord) -> None:
        """Store an incident: its whole record (payload) and its rows (key figures, actions, ranking,
        versions) in one transaction, so that what SQL finds is what the record says."""
        with self.store.transaction() as con:
            con.execute("INSERT OR REPLACE INTO incidents (id, network, network_version, state, payload, updated_at_ns, "
                        "first_station, parameter, start_ns, end_ns, version, top_candidate, top_probability, merged_into) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (rec.id, rec.network, rec.network_version, rec.state, rec.payload, now_ns(), rec.first_station,
                         rec.parameter, rec.start_ns, rec.end_ns, rec.version, rec.top_candidate, rec.top_probability,
                         rec.merged_into))
            for table in ("incident_actions", "incident_candidates", "incident_versions"):
                con.execute(f"DELETE FROM {table} WHERE incident_id = ?", (rec.id,))
            con.executemany("INSERT INTO incident_actions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [(rec.id, *a) for a in rec.actions])
            con.executemany("INSERT INTO incident_candidates VALUES (?, ?, ?, ?, ?)",
                            [(rec.id, i, *c) for i, c in enumerate(rec.candidates, 1)])
            con.executemany("INSERT INTO incident_versions VALUES (?, ?, ?, ?, ?)",
                            [(rec.id, v[0], v[1], json.dumps(v[2], ensure_ascii=False), json.dumps(v[3])) for v in rec.versions])

    def unindexed_incidents(self) -> list[str]:
        """Payloads of incidents stored before their rows existed (schema < 4), to index them once."""
        return [r[0] for r in self.store._reader().execute("SELECT payload FROM incidents WHERE version IS NULL")]

    def actions(self, *, network: str | None = None, department: str | None = None, status: str | None = None,
                incident_id: str | None = None) -> list[ActionRow]:
        """Checklist actions by network, department, status or incident, oldest incident first."""
        q = ("SELECT a.incident_id, a.action_id, a.kind, a.department, a.target, a.status, a.deadline_ns, a.changed_at_ns "
             "FROM incident_actions a JOIN incidents i ON i.id = a.incident_id WHERE 1=1")
        args: list[Any] = []
        for col, val in (("i.network", network), ("a.department", department), ("a.status", status),
                         ("a.incident_id", incident_id)):
            if val:
                q, args = q + f" AND {col} = ?", [*args, val]
        return [ActionRow(*r) for r in self.store._reader().execute(q + " ORDER BY i.start_ns, a.action_id", args)]

    def incidents_naming(self, candidate_id: str, max_rank: int = 3) -> list[tuple[str, int, float]]:
        """(incident id, rank, probability) of the incidents whose top ``max_rank`` candidates name ``candidate_id``."""
        return [(r[0], int(r[1]), float(r[2])) for r in self.store._reader().execute(
            "SELECT incident_id, rank, probability FROM incident_candidates WHERE candidate_id = ? AND rank <= ? "
            "ORDER BY incident_id", (candidate_id, max_rank))]

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

    def alert(self, alert_id: str, owner: str | None = None) -> bytes:
        """The serialized Alert queued under ``alert_id``; with ``owner``, only if it went to one of
        that client's targets. Raises NotFoundError otherwise."""
        q, args = "SELECT payload FROM alerts WHERE alert_id = ?", [alert_id]
        if owner is not None:
            q += (" AND alert_id IN (SELECT d.alert_id FROM deliveries d, targets t"
                  " WHERE d.target_id = t.id AND t.owner = ?)")
            args.append(owner)
        row = self.store._reader().execute(q, args).fetchone()
        if row is None:
            raise NotFoundError(f"alert {alert_id!r} is not stored" + (" for your targets" if owner else ""))
        return bytes(row[0])

    def latest_alert(self, incident_id: str) -> bytes | None:
        """The serialized Alert most recently queued for an incident (None: none yet)."""
        row = self.store._reader().execute(
            "SELECT payload FROM alerts WHERE incident_id = ? ORDER BY sequence DESC LIMIT 1", (incident_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def has_incident(self, incident_id: str) -> bool:
        return self.store._reader().execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone() is not None

    # ----------------------------------------------------------------- targets
    _COLS = "id, grpc_address, webhook_url, webhook_secret, network, departments, created_at_ns, owner, tls"

    @staticmethod
    def _check_owner(con: Any, target_id: str, client: str | None, role: str | None) -> tuple | None:
        row = con.execute(f"SELECT {Outbox._COLS} FROM targets WHERE id = ?", (target_id,)).fetchone()
        if row is not None and role != "admin" and row[7] != client:
            raise NotOwnerError(f"target {target_id!r} belongs to {row[7] or 'an administrator'!r}; "
                                f"{client!r} may change only its own targets")
        return row

    def put_target(self, t: TargetRow, role: str | None = "admin", audit: Audit | None = None) -> bool:
        """Register or re-register a target; returns whether it existed.

        Only its owner or an admin may re-register an existing target (:class:`NotOwnerError`).
        A new endpoint takes effect at once: undelivered alerts to the target are due now, with
        their attempts reset. The audit row (``audit``) is written in the same transaction.
        """
        with self.store.transaction() as con:
            old = self._check_owner(con, t.id, t.owner, role)
            owner = old[7] if old is not None and role == "admin" and old[7] else t.owner
            con.execute(f"INSERT OR REPLACE INTO targets ({self._COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (t.id, t.grpc_address, t.webhook_url, t.webhook_secret, t.network, json.dumps(list(t.departments)),
                         t.created_at_ns, owner, int(t.tls)))
            if old is not None and _target(old).endpoint != t.endpoint:
                t_now = now_ns()  # due now, attempts and dead-letter clock start again at the new endpoint
                con.execute("UPDATE deliveries SET next_attempt_ns = ?, attempts = 0, queued_at_ns = ? WHERE target_id = ? "
                            "AND state IN ('pending', 'retrying')", (t_now, t_now, t.id))
            if audit is not None:
                self.store.audit(*audit)
        return old is not None

    def remove_target(self, target_id: str, client: str | None = None, role: str | None = "admin",
                      audit: Audit | None = None) -> None:
        with self.store.transaction() as con:
            if self._check_owner(con, target_id, client, role) is None:
                raise NotFoundError(f"target {target_id!r} is not registered")
            con.execute("DELETE FROM targets WHERE id = ?", (target_id,))
            con.execute("DELETE FROM deliveries WHERE target_id = ? AND state != 'delivered'", (target_id,))
            if audit is not None:
                self.store.audit(*audit)

    def targets(self, owner: str | None = None) -> list[TargetRow]:
        """Every target, or those of one owner."""
        q, args = f"SELECT {self._COLS} FROM targets", ()
        if owner is not None:
            q, args = q + " WHERE owner = ?", (owner,)
        return [_target(r) for r in self.store._reader().execute(q + " ORDER BY id", args)]

    def target(self, target_id: str) -> TargetRow | None:
        row = self.store._reader().execute(f"SELECT {self._COLS} FROM targets WHERE id = ?", (target_id,)).fetchone()
        return None if row is None else _target(row)

    # ----------------------------------------------------------------- alerts and deliveries
    def enqueue(self, alert_id: str, incident_id: str, payload: bytes, network: str, departments: set[str]) -> int:
        """Queue an alert for every covering target; returns its sequence (idempotent on alert_id).

        Behind a dead-lettered alert of the same incident and target, a new alert is held (state
        ``dead``, the reason in ``last_error``), so a replay delivers them in order.
        """
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
                    held = con.execute("SELECT d.alert_id FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id "
                                       "WHERE d.target_id = ? AND a.incident_id = ? AND d.state = 'dead' LIMIT 1",
                                       (target.id, incident_id)).fetchone()
                    state, why = ("dead", f"held behind dead-lettered {held[0]}") if held else ("pending", None)
                    con.execute("INSERT INTO deliveries (alert_id, target_id, state, attempts, next_attempt_ns, last_error, "
                                "delivered_at_ns, queued_at_ns) VALUES (?, ?, ?, 0, ?, ?, NULL, ?)",
                                (alert_id, target.id, state, t, why, t))
            return int(seq)

    def due_targets(self) -> list[str]:
        """Targets with a delivery due now."""
        return [r[0] for r in self.store._reader().execute(
            "SELECT DISTINCT target_id FROM deliveries WHERE state IN ('pending', 'retrying') AND next_attempt_ns <= ?",
            (now_ns(),))]

    def due(self, limit: int = 100, target_id: str | None = None) -> list[DueDelivery]:
        """Deliveries to attempt now: per (incident, target) only the lowest sequence not yet delivered
        (a dead-lettered one holds the later ones back)."""
        where = "AND d.target_id = ?" if target_id else ""
        args: tuple = (target_id,) if target_id else ()
        rows = self.store._reader().execute(
            f"""SELECT d.alert_id, d.target_id, a.incident_id, a.sequence, d.attempts, a.payload, d.next_attempt_ns,
                      COALESCE(d.queued_at_ns, a.created_at_ns)
               FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id
               WHERE d.state IN ('pending', 'retrying') {where} AND a.sequence = (
                   SELECT MIN(a2.sequence) FROM deliveries d2 JOIN alerts a2 ON a2.alert_id = d2.alert_id
                   WHERE d2.target_id = d.target_id AND a2.incident_id = a.incident_id AND d2.state != 'delivered')
               ORDER BY d.next_attempt_ns LIMIT ?""", (*args, limit)).fetchall()
        targets = {t.id: t for t in self.targets()}
        t_now = now_ns()
        return [DueDelivery(r[0], targets[r[1]], r[2], int(r[3]), int(r[4]), bytes(r[5]), int(r[7]))
                for r in rows if r[6] <= t_now and r[1] in targets]

    def delivered(self, alert_id: str, target_id: str) -> None:
        with self.store.transaction() as con:
            con.execute("UPDATE deliveries SET state = 'delivered', delivered_at_ns = ?, last_error = NULL "
                        "WHERE alert_id = ? AND target_id = ?", (now_ns(), alert_id, target_id))

    def failed(self, alert_id: str, target_id: str, attempts: int, error: str, rng: random.Random | None = None,
               cap_s: float = BACKOFF_CAP_S, dead_after_s: float | None = None, queued_at_ns: int = 0) -> float | None:
        """Record a failed attempt; returns the delay before the next one [s], or None when the
        delivery has failed for ``dead_after_s`` since it was queued and is now dead-lettered
        (with every later alert of the same incident to the same target, to keep their order)."""
        t = now_ns()
        dead = dead_after_s is not None and queued_at_ns and (t - queued_at_ns) / 1e9 >= dead_after_s
        delay = None if dead else backoff_s(attempts, rng, cap_s)
        with self.store.transaction() as con:
            if dead:
                n = con.execute("UPDATE deliveries SET state = 'dead', attempts = ?, last_error = ? WHERE alert_id = ? "
                                "AND target_id = ? AND attempts = ? AND state IN ('pending', 'retrying')",
                                (attempts + 1, error[:500], alert_id, target_id, attempts)).rowcount
                if not n:  # re-registered (attempts reset) or replayed meanwhile: this failure is stale
                    return 0.0
                con.execute("""UPDATE deliveries SET state = 'dead', last_error = ? WHERE target_id = ? AND state IN
                               ('pending', 'retrying') AND alert_id IN (SELECT a.alert_id FROM alerts a, alerts b
                               WHERE b.alert_id = ? AND a.incident_id = b.incident_id AND a.sequence > b.sequence)""",
                            (f"held behind dead-lettered {alert_id}", target_id, alert_id))
            else:
                # only if nothing changed the row since the attempt began: a re-registration during a
                # failing attempt reset its attempts and made it due now, and that must stand
                con.execute("UPDATE deliveries SET state = 'retrying', attempts = ?, next_attempt_ns = ?, last_error = ? "
                            "WHERE alert_id = ? AND target_id = ? AND attempts = ? AND state IN ('pending', 'retrying')",
                            (attempts + 1, t + int(delay * 1e9), error[:500], alert_id, target_id, attempts))
        return delay

    def replay(self, target_id: str = "", alert_id: str = "", incident_id: str = "", audit: Audit | None = None) -> int:
        """Put dead-lettered deliveries (all, or of one target / alert / incident) back in the queue,
        due now with their attempts reset; returns how many. The audit row is in the same transaction."""
        q = ("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ns = ?, queued_at_ns = ?, last_error = NULL "
             "WHERE state = 'dead'")
        t = now_ns()
        args: list[Any] = [t, t]
        if target_id:
            q, args = q + " AND target_id = ?", [*args, target_id]
        if alert_id:
            q, args = q + " AND alert_id = ?", [*args, alert_id]
        if incident_id:
            q, args = q + " AND alert_id IN (SELECT alert_id FROM alerts WHERE incident_id = ?)", [*args, incident_id]
        with self.store.transaction() as con:
            n = con.execute(q, args).rowcount
            if audit is not None:
                self.store.audit(audit[0], audit[1], audit[2], f"{audit[3]}: {n} replayed")
        return int(n)

    def deliveries(self, incident_id: str | None = None, target_id: str | None = None, owner: str | None = None,
                   state: str | None = None, limit: int = 10_000) -> list[tuple]:
        q = ("SELECT d.alert_id, d.target_id, a.incident_id, a.sequence, d.state, d.attempts, d.next_attempt_ns, "
             "d.last_error, d.delivered_at_ns FROM deliveries d JOIN alerts a ON a.alert_id = d.alert_id WHERE 1=1")
        args: list[Any] = []
        if incident_id:
            q, args = q + " AND a.incident_id = ?", [*args, incident_id]
        if target_id:
            q, args = q + " AND d.target_id = ?", [*args, target_id]
        if owner is not None:
            q, args = q + " AND d.target_id IN (SELECT id FROM targets WHERE owner = ?)", [*args, owner]
        if state:
            q, args = q + " AND d.state = ?", [*args, state]
        return list(self.store._reader().execute(q + " ORDER BY a.incident_id, a.sequence, d.target_id LIMIT ?",
                                                 [*args, limit]))
