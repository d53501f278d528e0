"""The HJ 212 gateway: a TCP server for online monitors' data loggers (数采仪).

Each connection gets a thread (a city's few hundred monitors each keep one long connection). Bytes are
cut into packets by :class:`~server.hj212.protocol.FrameReader`; each packet is checked (framing,
length, CRC, syntax, password when one is configured, ST, the MN's owner in a stored network, every
value), converted (:mod:`server.hj212.ingest`) and stored with its audit row in a durable SQLite
transaction (WAL, synchronous=FULL: :meth:`server.storage.Store.add_observations`, the same file and
durability as gRPC ingest; packets arriving together on several connections share one transaction,
:class:`GroupCommitter`). Only then, when the packet's Flag asks for an answer, does the gateway
send CN 9014 (数据应答): an acknowledged packet is on disk. New readings wake the automatic pipeline
as gRPC ingest does.

A refused packet is logged (peer, MN, reason) and counted by reason; when it asked for an answer and
its header could be read, the gateway answers CN 9011 with the QnRtn code of the reason (9 CRC, 4 MN,
3 PW, 5 ST, 8 CN, 2 refused for a bad value) and never 9014, so the data logger keeps the data and
resends it. Nothing a peer sends ends the connection except closing it or staying silent for
:data:`IDLE_TIMEOUT_S`; nothing ends the gateway. Counters: :meth:`Gateway.stats`, and an INFO log line
every :data:`STATS_LOG_S` seconds while they change.

A packet that is one part of a split upload (Flag bit D, PNUM/PNO) is processed and answered as a
packet of its own; parts are not reassembled, so a part without its own DataTime is refused.

The MN of a packet is looked up among the ``hj212_mn`` fields of the stations and dischargers of the
latest version of every stored network (re-read when a network version changes). An MN found in two
networks is refused (ambiguous) rather than guessed.
"""

from __future__ import annotations

import logging
import queue
import socket
import socketserver
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from server.servicers import Networks
from server.storage import Observation, Store, StoreError

from .codes import (
    CN_HEARTBEAT,
    CN_NOTICE_ANSWER,
    CN_REQUEST_ANSWER,
    DATA_COMMANDS,
    QN_RTN,
    STATE_COMMANDS,
    SYSTEM_CODES,
)
from .ingest import DEFAULT_TIMEZONE, Owner, observations
from .protocol import FrameReader, Hj212Error, Packet, answer, data_answer, parse_frame

log = logging.getLogger("rivertrace.hj212")
#: a connection silent this long is closed [s]; data loggers send real-time data every few minutes
#: (HJ 212-2025 adds heartbeats) and reconnect by themselves when they next have data
IDLE_TIMEOUT_S = 900.0
#: period of the counters' log line [s]
STATS_LOG_S = 60.0
#: open connections at most (one thread each): a city has hundreds of monitors; beyond this a new
#: connection is closed at once (counted), so a flood cannot exhaust the process's threads
MAX_CONNECTIONS = 2000
#: packets written in one transaction at most (group commit)
MAX_BATCH = 256
_ANSWER_CNS = frozenset({"9011", "9012", "9013", "9014"})


class _Job:
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: Observation) -> None:
        self.item = item
        self.done = threading.Event()
        self.result: tuple[int, int, int] = (0, 0, 0)
        self.error: BaseException | None = None


class GroupCommitter:
    """Group commit: the packets of all connections that arrive while a transaction is being written
    go into the next one, so one fsync serves many packets; each connection still waits until its own
    packet is committed before it answers."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store, self.max_batch = store, max_batch
        self.commits = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="hj212-commit", daemon=True)
        self._thread.start()

    def submit(self, item: Observation) -> tuple[int, int, int]:
        """Write one packet's rows durably; (readings stored, duplicates, states). Raises what the
        transaction raised (then nothing of its batch was written)."""
        if self._stopped:
            raise RuntimeError("the HJ 212 committer is stopped")
        job = _Job(item)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _run(self) -> None:
        last = False
        while not last:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    last = True
                    break
                batch.append(nxt)
            try:
                results = self.store.add_observations([j.item for j in batch])
                self.commits += 1
                for j, r in zip(batch, results):
                    j.result = r
            except BaseException as err:  # noqa: BLE001 - handed to every waiting connection
                for j in batch:
                    j.error = err
            finally:
                for j in batch:
                    j.done.set()

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(30)


class MnIndex:
    """MN -> the station or discharger that owns it, over the latest version of every stored network."""

    def __init__(self, store: Store, networks: Networks) -> None:
        self.store, self.networks = store, networks
        self._key: tuple[tuple[str, int], ...] | None = None
        self._owners: dict[str, Owner] = {}
        self._ambiguous: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def owner(self, packet: Packet) -> Owner:
        """The owner of the packet's MN. Raises Hj212Error ``unknown_mn`` (QnRtn 4)."""
        key = tuple((name, self.store.network_version(name)) for name in self.store.network_names())
        with self._lock:
            if key != self._key:
                self._rebuild(key)
            owner = self._owners.get(packet.mn)
            nets = self._ambiguous.get(packet.mn)
        if nets:
            raise Hj212Error("unknown_mn", f"MN {packet.mn!r} is registered in more than one network "
                                           f"({', '.join(nets)})", QN_RTN["mn"], packet)
        if owner is None:
            raise Hj212Error("unknown_mn", f"MN {packet.mn!r} is not the hj212_mn of any station or discharger "
                                           "of a stored network", QN_RTN["mn"], packet)
        return owner

    def _rebuild(self, key: tuple[tuple[str, int], ...]) -> None:
        owners: dict[str, Owner] = {}
        seen: dict[str, list[str]] = {}
        for name, version in key:
            try:
                _v, net = self.networks.get(name, version)
            except Exception:
                log.exception("network %s v%d cannot be read for HJ 212 MNs", name, version)
                continue
            for kind, features in (("station", net.stations), ("discharger", net.dischargers)):
                for f in features.values():
                    mn = f.attrs.get("hj212_mn")
                    if isinstance(mn, str) and mn:
                        owners[mn] = Owner(name, kind, f.id, dict(f.attrs.get("permit_limits_mg_l") or {}))  # type: ignore[arg-type]
                        seen.setdefault(mn, []).append(name)
        self._owners = owners
        self._ambiguous = {mn: nets for mn, nets in seen.items() if len(set(nets)) > 1}
        self._key = key
        log.info("HJ 212: %d MN(s) mapped over %d network(s)", len(owners), len(key))


class Gateway:
    """The running gateway (see module doc). ``port`` is the bound port; ``stop()`` ends it."""

    def __init__(self, store: Store, networks: Networks, host: str = "127.0.0.1", port: int = 0, *,
                 password: str | None = None, on_readings: Callable[[str, set[str]], Any] | None = None,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, timezone: Any = DEFAULT_TIMEZONE,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.store = store
        self.committer = GroupCommitter(store)
        self.max_connections = max_connections
        self.index = MnIndex(store, networks)
        self.password = password
        self.on_readings = on_readings
        self.idle_timeout_s = idle_timeout_s
        self.timezone = timezone
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self._server.gateway = self
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="hj212-accept", daemon=True)
        self._thread.start()
        self._stats_thread = threading.Thread(target=self._log_stats, name="hj212-stats", daemon=True)
        self._stats_thread.start()
        log.info("HJ 212 gateway listening on %s:%d", self.host, self.port)

    # ------------------------------------------------------------------------------- counters
    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def stats(self) -> dict[str, int]:
        """Counters: connections, connections_refused, packets, accepted, answers, answers_ignored,
        readings_stored, readings_duplicate, states_stored, fields_skipped, heartbeats, commits (SQLite
        transactions: fewer than accepted packets when connections share one), refused and
        ``refused_<reason>`` per reason."""
        with self._lock:
            return {**self._counts, "commits": self.committer.commits}

    def _log_stats(self) -> None:
        last: dict[str, int] = {}
        while not self._stopping.wait(STATS_LOG_S):
            now = self.stats()
            if now != last:
                log.info("HJ 212 counters: %s", ", ".join(f"{k}={v}" for k, v in sorted(now.items())))
                last = now

    # ------------------------------------------------------------------------------- packets
    def handle(self, item: bytes | Hj212Error, peer: str) -> bytes | None:
        """Process one framed packet (or framing error); the answer to send, if any. Never raises."""
        try:
            if isinstance(item, Hj212Error):
                raise item
            self.count("packets")
            return self._process(parse_frame(item), peer)
        except Hj212Error as err:
            return self._refuse(err, peer)
        except (StoreError, sqlite3.Error, OSError):  # not stored: no answer, so the logger resends
            log.exception("HJ 212 packet from %s could not be stored", peer)
            self.count("refused")
            self.count("refused_storage")
            return None
        except Exception:
            log.exception("HJ 212 packet from %s could not be processed", peer)
            self.count("refused")
            self.count("refused_internal")
            return None

    def _refuse(self, err: Hj212Error, peer: str) -> bytes | None:
        self.count("refused")
        self.count(f"refused_{err.reason}")
        p = err.packet
        log.warning("HJ 212 packet from %s refused (%s)%s: %s", peer, err.reason,
                    f" MN {p.mn} CN {p.cn} QN {p.qn}" if p else "", err)
        if p is not None and p.answer_requested and p.qn:
            self.count("answers")
            return answer(p, CN_REQUEST_ANSWER, f"QnRtn={err.qn_rtn}")
        return None

    def _process(self, p: Packet, peer: str) -> bytes | None:
        if self.password is not None and p.pw != self.password:
            raise Hj212Error("password", f"PW of MN {p.mn!r} does not match the configured password",
                             QN_RTN["password"], p)
        if p.st not in SYSTEM_CODES:
            raise Hj212Error("st", f"ST {p.st} is not a water or system-interaction system code "
                                   f"({', '.join(SYSTEM_CODES)})", QN_RTN["st"], p)
        if p.cn == CN_HEARTBEAT:
            self.count("heartbeats")
            return self._answered(p, answer(p, CN_NOTICE_ANSWER))
        if p.cn in _ANSWER_CNS:  # an answer from the field unit to a command this gateway never sends
            self.count("answers_ignored")
            return None
        if p.cn not in DATA_COMMANDS and p.cn not in STATE_COMMANDS:
            raise Hj212Error("unsupported_cn", f"CN {p.cn} is not an upload this gateway handles "
                                               f"({', '.join(sorted({*DATA_COMMANDS, *STATE_COMMANDS}))}, {CN_HEARTBEAT})",
                             QN_RTN["cn"], p)
        owner = self.index.owner(p)
        obs = observations(p, owner, self.timezone)
        detail = (f"{owner.network} {owner.kind} {owner.id} QN {p.qn}: {len(obs.readings)} readings, "
                  f"{len(obs.states)} states from {peer}")
        stored, dup, states = self.committer.submit(
            (owner.network, obs.readings, obs.states, (f"hj212:{p.mn}", "monitor", f"HJ212/CN{p.cn}", detail)))
        self.count("accepted")
        self.count("readings_stored", stored)
        self.count("readings_duplicate", dup)
        self.count("states_stored", states)
        self.count("fields_skipped", len(obs.skipped))
        if obs.skipped:
            log.debug("HJ 212 MN %s CN %s: skipped %s", p.mn, p.cn, ", ".join(obs.skipped))
        if stored and self.on_readings is not None:
            try:
                self.on_readings(owner.network, {r[0] for r in obs.readings})
            except Exception:
                log.exception("pipeline notification failed for %s", owner.network)
        return self._answered(p, data_answer(p))

    def _answered(self, p: Packet, reply: bytes) -> bytes | None:
        if not p.answer_requested:
            return None
        self.count("answers")
        return reply

    # ------------------------------------------------------------------------------- lifecycle
    def _admit(self, peer: str) -> bool:
        with self._lock:
            ok = len(self._clients) < self.max_connections
            if not ok:
                self._counts["connections_refused"] += 1
        if not ok:
            log.warning("HJ 212 connection from %s refused: %d connections open", peer, self.max_connections)
        return ok

    def _register(self, sock: socket.socket) -> None:
        with self._lock:
            self._clients.add(sock)
            self._counts["connections"] += 1

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._clients.discard(sock)

    def stop(self) -> None:
        """Stop accepting, close every connection, wait for the connection threads; log the counters."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self.committer.stop()
        log.info("HJ 212 gateway stopped; counters: %s", self.stats())


def _peer(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = True
    gateway: Gateway

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.gateway._admit(_peer(client_address))


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        gw: Gateway = self.server.gateway  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        peer = _peer(self.client_address)
        sock.settimeout(gw.idle_timeout_s)
        gw._register(sock)
        reader = FrameReader()
        try:
            while not gw._stopping.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    log.info("HJ 212 connection from %s idle for %.0f s: closed", peer, gw.idle_timeout_s)
                    break
                except OSError:
                    break
                if not data:
                    break
                for item in reader.feed(data):
                    reply = gw.handle(item, peer)
                    if reply:
                        sock.sendall(reply)
        except OSError as err:  # the peer went away while we answered
            log.info("HJ 212 connection from %s lost: %s", peer, err)
        finally:
            gw._unregister(sock)


def start_gateway(config: Any, store: Store, networks: Networks | None = None,
                  on_readings: Callable[[str, set[str]], Any] | None = None) -> Gateway | None:
    """Start the gateway when the config asks for one (``hj212_port`` set; ``[hj212]`` in the TOML or
    ``rivertrace serve --hj212-port N``), else None. Binds ``hj212_host`` (default: the service's host)."""
    port = getattr(config, "hj212_port", None)
    if port is None:
        return None
    host = getattr(config, "hj212_host", None) or config.host
    return Gateway(store, networks or Networks(store), host, int(port),
                   password=getattr(config, "hj212_password", None), on_readings=on_readings)
