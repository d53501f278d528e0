"""The vocabulary of source attribution: hypotheses, ranked candidates, results, and the constants
of the likelihood (:mod:`tracer.attribution` uses them; see its module doc for the model).

Units: s, m, kg, kg/s, g/m3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from .exceptions import TracerError
from .separation import group_candidates

if TYPE_CHECKING:
    from hydrology.network import Feature

#: relative error of the modelled flows (DESIGN.md: attribution must tolerate +-20 %) [-]
FLOW_ERROR = 0.2
#: spread of the masses implied by different stations (flow error and 10 % sensor noise) [-, ln]
MASS_SIGMA_LN = 0.35
#: model error of the concentration curve, relative to the modelled value [-]
CURVE_RELATIVE_ERROR = 0.25
#: a station's record counts as at most this many independent samples (model errors are
#: correlated over a curve, and a 5-minute record would otherwise swamp every other term) [-]
MAX_INDEPENDENT_SAMPLES = 20.0
#: the same in the exact pass, whose likelihood carries the timing error of tracer.error_budget [-]
EXACT_INDEPENDENT_SAMPLES = 20.0
#: a silent station's record is scored with only this much relative model error: it saw nothing
#: for the whole record, so the timing and shape errors the 25 % allows for do not apply [-]
SILENCE_RELATIVE_ERROR = 0.05
#: the event run at a station: samples above this many noise scales, gaps of a few samples bridged
RUN_SIGMAS = 1.0
RUN_GAP = 2
#: default travel-time horizon of the upstream search [s]
DEFAULT_HORIZON_S = 3 * 86400.0
#: continuous release: the plateau is the median excess over the last PLATEAU_SHARE of the event run
#: (at least PLATEAU_MIN_SAMPLES samples), and the run must stay at or above PLATEAU_LEVEL x its
#: 95th percentile there [-]
PLATEAU_SHARE = 0.25
PLATEAU_MIN_SAMPLES = 3
PLATEAU_LEVEL = 0.5
#: hypotheses that the moment screen ranks highest and that are then scored again with the exact
#: transport kernel (their curves, release times and sizes), at most [-] ...
EXACT_RESCORE = 20
#: ... of those within this log-posterior of the screen's best [-] (e^-40: no probability to move,
#: unless the exact curves shift a hypothesis by more than the whole screen's model error)
EXACT_RESCORE_GAP = 40.0
ReleaseKind = Literal["pulse", "continuous"]
Z90 = 1.6449


class AttributionError(TracerError, ValueError):
    """Attribution cannot run (no readings at the station, parameter not measured...)."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """Where a source might be: a registered discharger, or an unregistered source on a reach."""

    id: str
    kind: Literal["discharger", "unregistered"]
    reach: str
    chainage_m: float
    feature: Feature | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked hypothesis with its fitted release and evidence (log factors, and why)."""

    id: str
    kind: str
    probability: float
    distance_m: float
    travel_time_s: float
    release_start: datetime | None
    release_start_interval: tuple[datetime, datetime] | None
    mass_kg: float | None
    mass_kg_interval: tuple[float, float] | None
    rate_kg_s: float | None
    rate_kg_s_interval: tuple[float, float] | None
    log_posterior: float
    evidence: dict[str, float]
    explanation: dict[str, str]
    #: release duration [s] of the finite-release model (None: an instant, or not fitted)
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """Ranked candidates for one anomaly, and what the ranking used."""

    station: str
    parameter: str
    model: str
    candidates: tuple[Candidate, ...]
    stations_saw: tuple[str, ...]
    stations_silent: tuple[str, ...]
    nearest_upstream_discharger: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def groups(self) -> tuple[tuple[Candidate, ...], ...]:
        """The candidates in groups that cannot be told apart: Bayes factor within
        :data:`tracer.separation.GROUP_BAYES_FACTOR` (10) of the group's best (:func:`tracer.separation.groups`)."""
        return group_candidates(self.candidates)

    def rank_of(self, candidate_id: str) -> int | None:
        """1-based rank of a candidate id (None if absent)."""
        for i, c in enumerate(self.candidates, 1):
            if c.id == candidate_id:
                return i
        return None

