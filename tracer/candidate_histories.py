"""Release histories for the best candidates of an attribution (issue 11, deliverable 1, "better").

For each of the top candidates of an :class:`~tracer.attribution.AttributionResult`, the release
rate on a time grid is fitted by regularised NNLS against the exact kernel's responses at every
station of the attribution (those that saw the event and those that did not), with its
Laplace-approximate evidence (:mod:`tracer.release_history`). The candidates' histories are then
compared by evidence and prior, so that a history that needs many bins pays for them.

Error budget of each sample (as the exact pass of :mod:`tracer.attribution_exact`): the station's
noise floor and :data:`~tracer.attribution.CURVE_RELATIVE_ERROR` times the observed excess, in
quadrature; and a station's record counts as at most
:data:`~tracer.attribution.EXACT_INDEPENDENT_SAMPLES` independent samples (its sigma is scaled by
sqrt(n / that), the same as scaling its log-likelihood).

The grid: from the earliest time a release could have made the first rise at any station that saw
it (its run's start less the mean travel time and 4 standard deviations) to the latest (its run's
end less the mean travel time plus 4 standard deviations, at most the record's end), in bins of a
third of the shortest response's standard deviation, at least :data:`MIN_BIN_S` and at most
:data:`~tracer.release_history.MAX_BINS` bins.

This is not part of the ranking (see the report of branch ``attrib``): the ranking's
probabilities come from :func:`tracer.attribution.attribute_release`; these histories answer
"what was released, when, how long and how much" for its best candidates.

Units: s, kg, kg/s, g/m3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hydrology.pollutants import Pollutant
from hydrology.pollutants import pollutant as make_pollutant
from hydrology.transport.kernel import point_source_responses

from .attribution_signals import _window, event_run
from .attribution_types import CURVE_RELATIVE_ERROR, EXACT_INDEPENDENT_SAMPLES, AttributionResult
from .release_history import ReleaseHistory, StationRecord, fit_release_history
from .signals import station_signals

if TYPE_CHECKING:
    from hydrology.network import RiverNetwork
    from hydrology.reach_state import ReachState

    from .readings import Readings

#: release histories are fitted for this many candidates at most [-]
TOP_CANDIDATES = 3
#: the grid's finest bin [s]
MIN_BIN_S = 60.0
#: the grid reaches this many response standard deviations before and after an event run [-]
GRID_SD = 4.0


@dataclass(frozen=True, slots=True)
class CandidateHistory:
    """A candidate's fitted release history, in clock time, and its share of the evidence among the
    candidates fitted (prior x Laplace evidence, normalised over them)."""

    id: str
    history: ReleaseHistory
    start: datetime
    start_interval: tuple[datetime, datetime]
    share: float


def source_location(net: RiverNetwork, candidate_id: str, station: str) -> tuple[str, float]:
    """Reach and chainage [m] of a candidate: a registered discharger's outfall, or an unregistered
    source mid-way along the part of its reach above the station (as :func:`tracer.attribution.build_hypotheses`)."""
    if candidate_id.startswith("reach:"):
        rid = candidate_id.removeprefix("reach:")
        st = net.feature(station, "station")
        top = st.chainage_m if rid == st.reach else net.reaches[rid].length_m
        return rid, top / 2.0
    d = net.dischargers[candidate_id]
    return d.reach, d.chainage_m


def candidate_histories(net: RiverNetwork, readings: Readings, result: AttributionResult, *,
                        top: int = TOP_CANDIDATES, pollutant: Pollutant | None = None,
                        state: ReachState | None = None) -> list[CandidateHistory]:
    """Release histories of the ``top`` best candidates of ``result`` (module doc), best first by share."""
    st = state if state is not None else net.reach_state()
    pol = pollutant or make_pollutant(result.parameter)
    frame = readings.frame[readings.frame["parameter"] == result.parameter]
    t_ref = pd.Timestamp(frame["time"].min())
    use = list(result.stations_saw) + list(result.stations_silent)
    signals = station_signals(readings, result.parameter, use, t_ref)
    out: list[tuple[str, ReleaseHistory, float]] = []
    for cand in [c for c in result.candidates if c.release_start is not None][:top]:
        reach, chainage = source_location(net, cand.id, result.station)
        resp = point_source_responses(net, st, reach, chainage, pol, ("station",))
        row = {f.id: k for k, f in enumerate(resp.features)}
        records, lo, hi, sd_min, t_end = [], math.inf, -math.inf, math.inf, -math.inf
        for sid, sig in signals.items():
            k = row.get(sid)
            if k is None:
                continue  # a station the candidate cannot reach says nothing about its history
            idx = _window(sig)
            y = sig.excess[idx]
            sigma = np.sqrt(sig.noise**2 + (CURVE_RELATIVE_ERROR * np.clip(y, 0.0, None)) ** 2)
            sigma *= math.sqrt(max(1.0, idx.size / EXACT_INDEPENDENT_SAMPLES))
            records.append(StationRecord(sig.t_s[idx], y, sigma, k))
            t_end = max(t_end, float(sig.t_s[-1]))
            if sig.saw:
                a, b = event_run(sig)
                mean, sd = float(resp.mean_s[k]), float(resp.sd_s[k])
                lo = min(lo, float(sig.t_s[a]) - mean - GRID_SD * sd)
                hi = max(hi, float(sig.t_s[b]) - mean + GRID_SD * sd)
                sd_min = min(sd_min, sd)
        if not records or not math.isfinite(lo):
            continue
        hi = min(hi, t_end)
        history = fit_release_history(resp, records, lo, max(hi, lo + MIN_BIN_S), max(MIN_BIN_S, sd_min / 3.0))
        if not (history.mass_kg > 0 and math.isfinite(history.start_s)):
            continue  # no release explains the records better than none
        out.append((cand.id, history, float(cand.evidence.get("prior", 0.0))))
    if not out:
        return []
    logp = np.array([h.log_evidence + prior for _id, h, prior in out])
    share = np.exp(logp - logp.max())
    share /= share.sum()

    def clock(t_s: float) -> datetime:
        return (t_ref + pd.Timedelta(seconds=round(t_s))).to_pydatetime()

    res = [CandidateHistory(cid, h, clock(h.start_s), (clock(h.start_s_interval[0]), clock(h.start_s_interval[1])),
                            float(p)) for (cid, h, _prior), p in zip(out, share)]
    return sorted(res, key=lambda c: -c.share)
