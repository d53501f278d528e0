"""Trace and Forecast computed off the server's interpreter, in worker processes.

A trace or a forecast holds the Python interpreter (the GIL) for 0.1-5 s of pure computation. In the
server's own threads, a few of them at once leave ingest acknowledgements and reads waiting for the
interpreter (issue 13: ingest p99 591 ms under 50 clients against a 500 ms budget). Here they run in
``heavy_calls`` worker processes started with ``spawn`` on first use (fork would copy gRPC's threads).
Each worker opens the same SQLite file (WAL: readers never block the writer), reads the readings and the
network itself, and keeps parsed networks by (name, version) as the server does
(:class:`server.servicers.Networks`), so only the request's few arguments and the result cross the
process boundary.

The computations themselves are :func:`trace_call` and :func:`forecast_call`: the same functions run
in-process when ``compute_processes = false`` (tests, and a machine where processes are not wanted).

A worker that dies (killed, out of memory) fails only its own calls with UNAVAILABLE; the next call
starts a fresh pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pandas as pd

from hydrology.forecast_bands import receptor_bands
from hydrology.oxygen_network import DOConditions
from hydrology.transport.analytic import Release, forecast
from tracer.readings import canonical_parameter
from tracer.trace import detection_time, separation, trace

from .errors import ServiceError
from .pipeline import operations_evidence, readings_frame
from .servicers import Networks
from .storage import Store

log = logging.getLogger("rivertrace.compute")

#: the worker's own store and network cache (set by :func:`_init` in each worker process)
_WORKER: dict[str, Any] = {}


def trace_call(store: Store, networks: Networks, network: str, version: int, station_id: str, parameter: str,
               horizon_s: float, temperature_c: float) -> tuple[Any, tuple[Any, Any, Any]]:
    """Attribution of the anomaly at ``station_id`` on the stored readings, and what would separate the
    candidates (:func:`tracer.grab.separation`): (result, (undecided, grab, checks)). Units: s, degC."""
    _v, net = networks.get(network, version)
    frame = readings_frame(store, network, (station_id, canonical_parameter(parameter)))
    t_end = frame.frame["time"].max() if len(frame.frame) else pd.Timestamp.now(tz="UTC")
    ops = operations_evidence(store, network, t_end - pd.Timedelta(seconds=horizon_s), t_end)
    res = trace(net, frame, station_id, parameter, operations=ops, horizon_s=horizon_s,
                do_conditions=DOConditions(temperature_c=temperature_c))
    return res, separation(net, frame, res, separation_now(frame, res))


def separation_now(frame: Any, res: Any) -> datetime:
    """The time the grab sample is planned from, as ``rivertrace trace`` does (server/cli/incident.py):
    for a DO sag the latest DO reading at the station, else the detection time of the anomaly."""
    if res.model == "steady_do":
        return frame.series(res.station, "DO").index.max().to_pydatetime()
    return detection_time(frame, res.station, res.parameter).to_pydatetime()


def forecast_call(networks: Networks, network: str, version: int, release: Release, threshold_g_m3: float | None,
                  bands: bool) -> tuple[Any, Any]:
    """The forecast of ``release`` to every receptor, and its P10/P50/P90 bands when asked (else None)."""
    _v, net = networks.get(network, version)
    fc = forecast(net, release, threshold_g_m3=threshold_g_m3)
    return fc, (receptor_bands(net, release, threshold_g_m3=threshold_g_m3) if bands else None)


def _init(db: str) -> None:
    store = Store(db)
    _WORKER.update(store=store, networks=Networks(store))


def _trace_job(*args: Any) -> Any:
    return trace_call(_WORKER["store"], _WORKER["networks"], *args)


def _forecast_job(*args: Any) -> Any:
    return forecast_call(_WORKER["networks"], *args)


def _ready() -> bool:
    return True


class ComputePool:
    """``processes`` worker processes for :func:`trace_call` and :func:`forecast_call` on the file ``db``."""

    def __init__(self, db: str | Path, processes: int) -> None:
        self.db, self.processes = str(db), processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_init, initargs=(self.db,))
            return self._pool

    def warm(self) -> Future:
        """Start the workers now (they import the science, about 2 s each) instead of at the first call."""
        return self._executor().submit(_ready)

    def _run(self, job: Any, args: tuple, timeout: float | None) -> Any:
        pool = self._executor()
        try:
            fut = pool.submit(job, *args)
            return fut.result(timeout)
        except BrokenProcessPool as exc:
            with self._lock:
                if self._pool is pool:  # the next call starts fresh workers
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            log.error("a compute worker died: %s", exc)
            raise ServiceError(grpc.StatusCode.UNAVAILABLE, "a compute worker died during the call; try again") from exc
        except TimeoutError as exc:
            raise ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed while the computation ran") from exc

    def trace(self, *args: Any, timeout: float | None = None) -> Any:
        return self._run(_trace_job, args, timeout)

    def forecast(self, *args: Any, timeout: float | None = None) -> Any:
        return self._run(_forecast_job, args, timeout)

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
