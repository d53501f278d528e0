"""An incident's forecast bands, narrowed by what its stations have already seen.

The forecast from the traced release (:func:`hydrology.forecast_bands.receptor_bands`: P10/P50/P90 of
arrival, peak and end at every receptor from flow and dispersion uncertainty) is corrected by the
passages observed at the incident's stations (:func:`hydrology.forecast_bands.assimilate`):

* arrival: the first reading of an ``exceedance`` anomaly at a station, i.e. the first reading above
  the station's standard - the same threshold the forecast's arrival crosses (a station whose only
  anomalies are other rules, e.g. a sudden change below the standard, gives no arrival);
* peak: the time of the highest reading during the anomaly, only at stations the plume has passed
  (before that, the highest reading so far is not the peak).

Times are seconds after the traced release start. The observation error is the station's sampling
interval (median spacing of its readings) or 3 % of the travel time, whichever is larger
(:func:`hydrology.forecast_bands.observation_error_s`). The release start itself was fitted at the
nominal flow, so the first station's arrival pins the nominal factors more than it should; the gain
comes from the second and later stations (the travel time between stations tells the flow factor).
That is why the fitted start is not taken as known: its error is integrated out
(``start_sd_s`` of :func:`hydrology.forecast_bands.receptor_bands`), with the prior of
:func:`start_error_s`, so that a station's observed arrival moves the whole plume in time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd

from hydrology.forecast_bands import Bands, BandsError, assimilate, receptor_bands
from hydrology.network import RiverNetwork
from hydrology.transport.analytic import Release
from tracer.readings import Readings

log = logging.getLogger("rivertrace.incident")


def observed_passages(readings: Readings, incident: object, start: datetime, receptors: Iterable[str],
                      passed: Iterable[str]) -> tuple[dict[str, float], dict[str, float], float]:
    """(arrivals, peaks, sampling interval) observed at the incident's stations [s after ``start``; s].

    ``incident`` is a :class:`tracer.detection.Incident`; only stations in ``receptors`` (downstream of
    the release) count; peaks only at stations in ``passed``."""
    t0 = pd.Timestamp(start)
    rec, done = set(receptors), set(passed)
    arrivals: dict[str, float] = {}
    peaks: dict[str, float] = {}
    spacing = []
    for sid in incident.station_ids:  # type: ignore[attr-defined]
        if sid not in rec:
            continue
        mine = [a for a in incident.anomalies if a.station_id == sid]  # type: ignore[attr-defined]
        hot = [a for a in mine if a.rule == "exceedance"]
        if hot:
            t = (min(a.start for a in hot) - t0).total_seconds()
            if t >= 0:
                arrivals[sid] = t
        par = mine[0].parameter
        s = readings.series(sid, par)
        if len(s) > 1:
            spacing.append(float(np.median(np.diff(s.index.asi8))) / 1e9)
        if sid in done:
            a0, a1 = min(a.start for a in mine), max(a.end for a in mine)
            during = s[(s.index >= a0) & (s.index <= a1)]
            if len(during):
                t = (during.idxmax() - t0).total_seconds()
                if t >= 0:
                    peaks[sid] = t
    interval = float(np.median(spacing)) if spacing else 300.0
    return arrivals, peaks, interval


#: z of a two-sided 90 % interval (the trace's release-start interval) [-]
Z90 = 1.6449
#: share of the candidate's travel time to the station taken as the spread of a fitted start [-]
START_TRAVEL_SHARE = 0.5
#: least spread of a fitted release start [s]: two 5-minute samples either side of a crossing
START_SD_FLOOR_S = 600.0


def start_error_s(candidate: object) -> float:
    """Prior standard deviation of a traced release start [s].

    hypot(half-width of the trace's 90 % start interval / 1.645, 0.5 x the candidate's travel time to the
    station), at least 10 min. The interval alone is too narrow: it is fitted at the nominal flow and
    for this candidate, and the candidate may be the wrong one on the same stretch (a source farther up
    whose plume is more dispersed fits a start earlier by a share of the travel time; the replay's seed
    12 named a reach 2.6 km above the true plant at 99 %). Half the travel time is a judgment for that
    ambiguity, not a fit; a broad prior costs little, because the observed arrivals pin the offset."""
    iv = getattr(candidate, "release_start_interval", None)
    half = (iv[1] - iv[0]).total_seconds() / 2.0 / Z90 if iv else 0.0
    travel = float(getattr(candidate, "travel_time_s", 0.0) or 0.0)
    return max(START_SD_FLOOR_S, float(np.hypot(half, START_TRAVEL_SHARE * travel)))


def incident_bands(net: RiverNetwork, release: Release, readings: Readings, incident: object,
                   passed: Iterable[str], start_sd_s: float = 0.0, ignore: Iterable[str] = ()) -> Bands:
    """The bands of ``release`` (its start must be set), assimilated with the passages observed at the
    incident's stations; the prior bands when no passage is usable or none can be explained (logged).
    ``start_sd_s``: the spread of the release start [s] (:func:`start_error_s` for a traced one).
    ``ignore``: stations whose passages were seen at other flows than ``net`` has (below a dilution release
    that started since)."""
    if release.start is None:
        raise BandsError("the release needs a start to be compared with observed passages")
    bands = receptor_bands(net, release, start_sd_s=start_sd_s)
    usable = set(bands.fine) - set(ignore)
    arrivals, peaks, interval = observed_passages(readings, incident, release.start, usable, passed)
    if not arrivals and not peaks:
        return bands
    try:
        return assimilate(bands, arrivals, observed_peaks=peaks, sampling_interval_s=interval)
    except BandsError as exc:
        log.warning("incident %s: observed passages not assimilated: %s", getattr(incident, "id", "?"), exc)
        return bands
