"""Durable state of the service: an SQLite file in WAL mode, ``synchronous=FULL``.

A write returns only after its transaction is committed and fsync'd, so anything acknowledged to a
client survives a crash (SIGKILL, power loss). The schema is versioned: :data:`MIGRATIONS` are
applied in order and recorded in ``schema_version``; a database newer than this code is refused.

One writer connection guarded by a lock (SQLite allows one writer at a time anyway) and one reader
connection per thread (WAL readers never block the writer). Times are stored as integer
nanoseconds since the epoch (UTC); values in the internal SI unit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    # 1: networks, readings, operations, incidents, audit
    """
    CREATE TABLE networks (name TEXT NOT NULL, version INTEGER NOT NULL, document TEXT NOT NULL,
                           stored_at_ns INTEGER NOT NULL, stored_by TEXT, PRIMARY KEY (name, version));
    CREATE TABLE readings (network TEXT NOT NULL, station_id TEXT NOT NULL, parameter TEXT NOT NULL,
                           time_ns INTEGER NOT NULL, value REAL NOT NULL, flag TEXT,
                           PRIMARY KEY (network, station_id, parameter, time_ns)) WITHOUT ROWID;
    CREATE TABLE operations (network TEXT NOT NULL, discharger_id TEXT NOT NULL, time_ns INTEGER NOT NULL,
                             production_on INTEGER, treatment_on INTEGER, effluent_exceedance INTEGER,
                             PRIMARY KEY (network, discharger_id, time_ns));
    CREATE TABLE incidents (id TEXT PRIMARY KEY, network TEXT NOT NULL, network_version INTEGER NOT NULL,
                            state TEXT NOT NULL, payload TEXT NOT NULL, updated_at_ns INTEGER NOT NULL);
    CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER NOT NULL, client TEXT,
                        role TEXT, method TEXT NOT NULL, detail TEXT);
    """,
    # 2: alert outbox: targets, alerts (per-incident sequence), deliveries (one per alert x target)
    """
    CREATE TABLE targets (id TEXT PRIMARY KEY, grpc_address TEXT, webhook_url TEXT, webhook_secret TEXT,
                          network TEXT, departments TEXT NOT NULL, created_at_ns INTEGER NOT NULL);
    CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, sequence INTEGER NOT NULL,
                         created_at_ns INTEGER NOT NULL, payload BLOB NOT NULL, UNIQUE (incident_id, sequence));
    CREATE TABLE deliveries (alert_id TEXT NOT NULL, target_id TEXT NOT NULL, state TEXT NOT NULL,
                             attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ns INTEGER NOT NULL,
                             last_error TEXT, delivered_at_ns INTEGER, PRIMARY KEY (alert_id, target_id));
    CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ns);
    """,
    # 3: targets are owned by the client that registered them; a probe row for the health check
    """
    ALTER TABLE targets ADD COLUMN owner TEXT;
    ALTER TABLE targets ADD COLUMN tls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE deliveries ADD COLUMN queued_at_ns INTEGER;
    CREATE INDEX deliveries_target ON deliveries (target_id, state);
    CREATE TABLE health_probe (id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL);
    """,
    # 4: incidents as rows one can query (the payload stays the whole record): its key figures, its
    # checklist actions, its ranking and its versions, written in the same transaction as the payload
    """
    ALTER TABLE incidents ADD COLUMN first_station TEXT;
    ALTER TABLE incidents ADD COLUMN parameter TEXT;
    ALTER TABLE incidents ADD COLUMN start_ns INTEGER;
    ALTER TABLE incidents ADD COLUMN end_ns INTEGER;
    ALTER TABLE incidents ADD COLUMN version INTEGER;
    ALTER TABLE incidents ADD COLUMN top_candidate TEXT;
    ALTER TABLE incidents ADD COLUMN top_probability REAL;
    ALTER TABLE incidents ADD COLUMN merged_into TEXT;
    CREATE INDEX incidents_network_state ON incidents (network, state);
    CREATE TABLE incident_actions (incident_id TEXT NOT NULL, action_id TEXT NOT NULL, kind TEXT NOT NULL,
                                   department TEXT, target TEXT NOT NULL, status TEXT NOT NULL, deadline_ns INTEGER,
                                   changed_at_ns INTEGER, PRIMARY KEY (incident_id, action_id));
    CREATE INDEX incident_actions_department ON incident_actions (department, status);
    CREATE TABLE incident_candidates (incident_id TEXT NOT NULL, rank INTEGER NOT NULL, candidate_id TEXT NOT NULL,
                                      kind TEXT NOT NULL, probability REAL NOT NULL, PRIMARY KEY (incident_id, rank));
    CREATE INDEX incident_candidates_id ON incident_candidates (candidate_id);
    CREATE TABLE incident_versions (incident_id TEXT NOT NULL, version INTEGER NOT NULL, created_at_ns INTEGER NOT NULL,
                                    reasons TEXT NOT NULL, ranking TEXT NOT NULL, PRIMARY KEY (incident_id, version));
    """,
)
#: SQLite result codes (primary) that mean the file cannot take writes now
SQLITE_FULL = 13
SQLITE_UNAVAILABLE = {5: "busy", 6: "locked", 8: "read-only", 10: "disk I/O error", 14: "cannot open"}
#: (client, role, method, detail) of an audit row written inside a state change's transaction
Audit = tuple[str | None, str | None, str, str]


#: one packet's rows for :meth:`Store.add_observations`: (network, readings (station, parameter, time_ns,
#: value, flag), states (discharger, time_ns, production_on, treatment_on, effluent_exceedance),
#: audit (client, role, method, detail))
Observation = tuple[str, Sequence[tuple[str, str, int, float, "str | None"]],
                    Sequence[tuple[str, int, "bool | None", "bool | None", "bool | None"]],
                    tuple["str | None", "str | None", str, str]]


class StoreError(Exception):
    """Base of storage errors."""


class NotFoundError(StoreError, KeyError):
    """The requested row does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SchemaError(StoreError, RuntimeError):
    """The database was written by a newer rivertrace."""


class StorageFullError(StoreError, OSError):
    """The disk (or the database's size limit) is full: nothing was written."""


class StorageUnavailableError(StoreError, OSError):
    """The database cannot take writes now (read-only, I/O error, locked): nothing was written."""


def storage_error(err: sqlite3.Error, path: Path) -> StoreError | None:
    """The storage error a SQLite error means, or None if it is not about the file (a bug of ours)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == SQLITE_FULL:
        return StorageFullError(f"the database {path.name} cannot grow: disk full ({err})")
    if primary in SQLITE_UNAVAILABLE:
        return StorageUnavailableError(f"the database {path.name} cannot be written now: "
                                       f"{SQLITE_UNAVAILABLE[primary]} ({err})")
    return None


def now_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class StoredNetwork:
    name: str
    version: int
    document: dict[str, Any]
    stored_at_ns: int


class Store:
    """The service's SQLite file (see module doc). Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._local = threading.local()
        self._writer = self._connect()
        self.writable = True
        self.on_writable: list[Any] = []  # callbacks(bool) when writability changes (the health service)
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def _reader(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            self._local.con = con
        return con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (BEGIN IMMEDIATE ... COMMIT, fsync'd).

        Re-entrant: a transaction opened inside another on the same thread joins it, so a state
        change and its audit row commit together or not at all. SQLite errors about the file (disk
        full, read-only, I/O) become :class:`StorageFullError` / :class:`StorageUnavailableError`
        and mark the store not writable until a write succeeds again (:meth:`probe`).
        """
        with self._lock:
            con = self._writer
            if self._depth:
                self._depth += 1
                try:
                    yield con
                finally:
                    self._depth -= 1
                return
            try:
                con.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield con
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise
                finally:
                    self._depth = 0
                con.execute("COMMIT")
            except sqlite3.Error as err:
                if con.in_transaction:
                    try:
                        con.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                mapped = storage_error(err, self.path)
                if mapped is None:
                    raise
                self._set_writable(False)
                raise mapped from err
        self._set_writable(True)

    def incident_for_update(self, incident_id: str) -> tuple[str, int, str, str]:
        """(network, network_version, state, payload) of a stored incident, read on the writer connection.

        Only inside :meth:`transaction`: BEGIN IMMEDIATE holds SQLite's write lock (and ``_lock`` every
        writer thread of this process) from this read until COMMIT, so a read-check-write of the row
        cannot interleave with another writer's and lose its update. NotFoundError when not stored.
        """
        if not self._depth:
            raise RuntimeError("incident_for_update must be called inside Store.transaction()")
        row = self._writer.execute("SELECT network, network_version, state, payload FROM incidents WHERE id = ?",
                                   (incident_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"incident {incident_id!r} is not stored")
        return row[0], int(row[1]), row[2], row[3]

    def _set_writable(self, ok: bool) -> None:
        if ok == self.writable:
            return
        self.writable = ok
        for cb in list(self.on_writable):
            cb(ok)

    def probe(self) -> bool:
        """Try a tiny durable write; returns whether the store can write (updates :attr:`writable`)."""
        try:
            with self.transaction() as con:
                con.execute("INSERT OR REPLACE INTO health_probe VALUES (1, ?)", (now_ns(),))
        except StoreError:
            return False
        return True

    def _migrate(self) -> None:
        with self.transaction() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
            have = row[0] or 0
            if have > len(MIGRATIONS):
                raise SchemaError(f"{self.path}: schema version {have} is newer than this rivertrace ({len(MIGRATIONS)})")
            for v in range(have + 1, len(MIGRATIONS) + 1):
                for stmt in MIGRATIONS[v - 1].split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT INTO schema_version VALUES (?)", (v,))

    @property
    def schema_version(self) -> int:
        return int(self._reader().execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._writer.close()

    # --------------------------------------------------------------------------------- networks
    def put_network(self, name: str, document: dict[str, Any], stored_by: str | None = None,
                    audit: Audit | None = None, text: str | None = None) -> StoredNetwork:
        """Store a new version of a network (versions count from 1 per name); with ``audit``, its
        audit row (detail + `` v<version>``) in the same transaction. ``text``: the document's JSON."""
        text = text if text is not None else json.dumps(document, ensure_ascii=False)
        with self.transaction() as con:
            v = con.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM networks WHERE name = ?", (name,)).fetchone()[0]
            t = now_ns()
            con.execute("INSERT INTO networks VALUES (?, ?, ?, ?, ?)", (name, v, text, t, stored_by))
            if audit is not None:
                self.audit(audit[0], audit[1], audit[2], f"{audit[3]} v{v}")
        return StoredNetwork(name, int(v), document, t)

    def get_network_text(self, name: str, version: int = 0) -> tuple[int, str, int]:
        """(version, document JSON text as stored, stored_at_ns) without parsing it. Raises NotFoundError."""
        v = self.network_version(name, version)
        row = self._reader().execute("SELECT version, document, stored_at_ns FROM networks WHERE name = ? AND version = ?",
                                     (name, v)).fetchone()
        if row is None:
            raise NotFoundError(f"version {v} of network {name!r} is not stored")
        return int(row[0]), row[1], int(row[2])

    def get_network(self, name: str, version: int = 0) -> StoredNetwork:
        """A stored version (0: latest). Raises NotFoundError."""
        con = self._reader()
        if version:
            row = con.execute("SELECT version, document, stored_at_ns FROM networks WHERE name = ? AND version = ?",
                              (name, version)).fetchone()
        else:
            row = con.execute("SELECT version, document, stored_at_ns FROM networks WHERE name = ? "
                              "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        if row is None:
            what = f"version {version} of network {name!r}" if version else f"network {name!r}"
            raise NotFoundError(f"{what} is not stored")
        return StoredNetwork(name, int(row[0]), json.loads(row[1]), int(row[2]))

    def network_version(self, name: str, version: int = 0) -> int:
        """The stored version number (0: the latest), without loading the document. Raises NotFoundError."""
        con = self._reader()
        if version:
            row = con.execute("SELECT version FROM networks WHERE name = ? AND version = ?", (name, version)).fetchone()
        else:
            row = con.execute("SELECT MAX(version) FROM networks WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is None:
            what = f"version {version} of network {name!r}" if version else f"network {name!r}"
            raise NotFoundError(f"{what} is not stored")
        return int(row[0])

    def network_names(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT DISTINCT name FROM networks ORDER BY name")]

    # --------------------------------------------------------------------------------- readings
    def add_readings(self, network: str, rows: Sequence[tuple[str, str, int, float, str | None]],
                     audit: Audit | None = None) -> tuple[int, int]:
        """Insert (station, parameter, time_ns, value, flag) rows in one durable transaction; with
        ``audit``, its audit row (detail + the counts) in the same transaction.

        Returns (stored, duplicates): a row whose key is already stored is a duplicate (a client
        re-sending after a crash) and is not changed.
        """
        if not rows and audit is None:
            return 0, 0
        with self.transaction() as con:
            before = con.total_changes
            con.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?)",
                            [(network, s, p, t, v, f) for s, p, t, v, f in rows])
            stored = con.total_changes - before
            if audit is not None:
                self.audit(audit[0], audit[1], audit[2], f"{audit[3]}: {stored} stored, {len(rows) - stored} duplicates")
        return stored, len(rows) - stored

    def readings(self, network: str, station: str | None = None, parameter: str | None = None,
                 start_ns: int | None = None, end_ns: int | None = None) -> list[tuple[str, str, int, float, str | None]]:
        """Stored readings, ordered by station, parameter and time."""
        q = "SELECT station_id, parameter, time_ns, value, flag FROM readings WHERE network = ?"
        args: list[Any] = [network]
        for col, val, op in (("station_id", station, "="), ("parameter", parameter, "="),
                             ("time_ns", start_ns, ">="), ("time_ns", end_ns, "<=")):
            if val is not None:
                q += f" AND {col} {op} ?"
                args.append(val)
        return list(self._reader().execute(q + " ORDER BY station_id, parameter, time_ns", args))

    def newest_reading_ns(self, network: str, station: str | None = None, parameter: str | None = None) -> int | None:
        """Time of the newest stored reading of a network (or of one station and parameter) [ns], or None."""
        q, args = "SELECT MAX(time_ns) FROM readings WHERE network = ?", [network]
        if station is not None and parameter is not None:
            q, args = q + " AND station_id = ? AND parameter = ?", [network, station, parameter]
        row = self._reader().execute(q, args).fetchone()
        return None if row[0] is None else int(row[0])

    def count_readings(self, network: str | None = None) -> int:
        if network is None:
            return int(self._reader().execute("SELECT COUNT(*) FROM readings").fetchone()[0])
        return int(self._reader().execute("SELECT COUNT(*) FROM readings WHERE network = ?", (network,)).fetchone()[0])

    def add_operations(self, network: str, rows: Iterable[tuple[str, int, bool, bool, bool]],
                       audit: Audit | None = None) -> int:
        with self.transaction() as con:
            before = con.total_changes
            con.executemany("INSERT OR REPLACE INTO operations VALUES (?, ?, ?, ?, ?, ?)",
                            [(network, d, t, int(p), int(tr), int(e)) for d, t, p, tr, e in rows])
            n = con.total_changes - before
            if audit is not None:
                self.audit(audit[0], audit[1], audit[2], f"{audit[3]}: {n} states")
            return n

    def operations(self, network: str, start_ns: int, end_ns: int) -> list[tuple[str, int, bool | None, bool | None, bool | None]]:
        """Power-meter and effluent-monitor states (discharger, time, production, treatment, exceedance);
        None where a source did not report that state (an HJ 212 monitor reports no production)."""
        def b(x: int | None) -> bool | None:
            return None if x is None else bool(x)

        return [(d, int(t), b(p), b(tr), b(e)) for d, t, p, tr, e in self._reader().execute(
            "SELECT discharger_id, time_ns, production_on, treatment_on, effluent_exceedance FROM operations "
            "WHERE network = ? AND time_ns BETWEEN ? AND ? ORDER BY time_ns", (network, start_ns, end_ns))]

    def add_observations(self, batch: Sequence[Observation]) -> list[tuple[int, int, int]]:
        """Observations (the HJ 212 gateway's packets) with their audit rows, all in one durable
        transaction: one fsync for a batch of packets from many connections.

        Each item is ``(network, readings, states, audit)``: readings as :meth:`add_readings` (a stored
        key is a duplicate, left unchanged); states ``(discharger, time_ns, production_on,
        treatment_on, effluent_exceedance)`` merge into a stored state of the same discharger and time
        (None, not reported, keeps the stored value); audit ``(client, role, method, detail)``.
        Returns per item (readings stored, duplicates, states written).
        """
        out = []
        with self.transaction() as con:
            for network, readings, states, (client, role, method, detail) in batch:
                before = con.total_changes
                con.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?)",
                                [(network, s, p, t, v, f) for s, p, t, v, f in readings])
                stored = con.total_changes - before
                con.executemany(
                    "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (network, discharger_id, time_ns) "
                    "DO UPDATE SET production_on = COALESCE(excluded.production_on, production_on), "
                    "treatment_on = COALESCE(excluded.treatment_on, treatment_on), "
                    "effluent_exceedance = COALESCE(excluded.effluent_exceedance, effluent_exceedance)",
                    [(network, d, t, *(None if x is None else int(x) for x in (p, tr, e))) for d, t, p, tr, e in states])
                con.execute("INSERT INTO audit (time_ns, client, role, method, detail) VALUES (?, ?, ?, ?, ?)",
                            (now_ns(), client, role, method, detail))
                out.append((stored, len(readings) - stored, len(states)))
        return out

    # --------------------------------------------------------------------------------- audit
    def audit(self, client: str | None, role: str | None, method: str, detail: str = "") -> None:
        """Record a state-changing call (who, when, what)."""
        with self.transaction() as con:
            con.execute("INSERT INTO audit (time_ns, client, role, method, detail) VALUES (?, ?, ?, ?, ?)",
                        (now_ns(), client, role, method[:100], detail[:1000]))

    def audit_log(self, limit: int = 1000) -> list[tuple[int, str | None, str | None, str, str | None]]:
        return list(self._reader().execute(
            "SELECT time_ns, client, role, method, detail FROM audit ORDER BY seq DESC LIMIT ?", (limit,)))
