"""Dissolved oxygen along a river path: mixing at point inflows, then Streeter-Phelps per segment.

The path model chains complete mixing at each segment start (dischargers, tributaries) with the
extended Streeter-Phelps kinetics of :mod:`hydrology.oxygen` (CBOD decay, nitrification,
reaeration, saturation) through each segment. Everything is SI inside: time [s], rates [1/s],
concentrations [g/m3], temperature [degC]; CBOD is the ultimate carbonaceous demand.

References
----------
Chapra, S.C. (1997). Surface Water-Quality Modeling. McGraw-Hill. Lectures 19-21, 23.
Streeter, H.W. & Phelps, E.B. (1925). A study of the pollution and natural purification of the Ohio
    River. US Public Health Service, Public Health Bulletin 146.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .oxygen import (
    THETA_CBOD,
    THETA_NITRIFICATION,
    THETA_REAERATION,
    OxygenModelError,
    ReaerationMethod,
    _check,
    arrhenius,
    do_sag,
    do_saturation,
    reaeration_rate,
)

InflowKind = Literal["discharger", "tributary"]


def _field_array(name: str, value: ArrayLike, n: int | None) -> np.ndarray:
    a = np.atleast_1d(np.asarray(value, dtype=float))
    if a.ndim != 1:
        raise OxygenModelError(f"path field {name} must be one-dimensional, got shape {a.shape}")
    if n is not None and a.size == 1 and n != 1:
        a = np.full(n, a[0])
    if n is not None and a.size != n:
        raise OxygenModelError(f"path field {name} has {a.size} values for {n} segments")
    return a


@dataclass(frozen=True, slots=True)
class PathSegments:
    """A river path cut into segments, upstream to downstream, as aligned arrays (SI).

    Attributes
    ----------
    travel_time_s : ndarray
        Travel time through each segment [s] (> 0).
    discharge_m3s : ndarray
        Discharge in each segment [m3/s] (> 0). It must equal the flow arriving from upstream plus
        the point inflows at the segment start; a smaller value is a withdrawal (water leaves at
        river concentration); a larger one is an undeclared inflow and is an error.
    velocity_ms, depth_m : ndarray
        Mean velocity [m/s] and depth [m], used for reaeration.
    temperature_c : ndarray
        Water temperature [degC], for rate corrections and saturation.
    kd20_per_s, kn20_per_s : ndarray
        CBOD decay and nitrification rates at 20 C [1/s]; a scalar is broadcast to all segments.
    ka20_per_s : ndarray or None
        Stated reaeration rates at 20 C [1/s]; ``None`` computes them from velocity and depth.

    A scalar in any field is broadcast to every segment; otherwise each field has one value per
    segment.
    """

    travel_time_s: np.ndarray
    discharge_m3s: np.ndarray
    velocity_ms: np.ndarray
    depth_m: np.ndarray
    temperature_c: np.ndarray
    kd20_per_s: np.ndarray
    kn20_per_s: np.ndarray
    ka20_per_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = _field_array("travel_time_s", self.travel_time_s, None).size
        checks = {"travel_time_s": (0.0, True), "discharge_m3s": (0.0, True),
                  "velocity_ms": (0.0, False), "depth_m": (0.0, True),
                  "temperature_c": (0.0, False), "kd20_per_s": (0.0, False),
                  "kn20_per_s": (0.0, False), "ka20_per_s": (0.0, False)}
        for name, (lo, lo_open) in checks.items():
            value = getattr(self, name)
            if value is None:
                continue
            a = _field_array(name, value, n)
            _check(f"path field {name}", a, lo=lo, lo_open=lo_open)
            object.__setattr__(self, name, a)

    @property
    def n(self) -> int:
        """Number of segments."""
        return int(self.travel_time_s.size)


@dataclass(frozen=True, slots=True)
class WaterState:
    """Flow and quality of a parcel of water: the river upstream, an effluent, a tributary.

    Attributes
    ----------
    discharge_m3s : float
        Discharge [m3/s] (>= 0).
    cbod_g_m3 : float
        Ultimate CBOD [g/m3].
    nh3n_g_m3 : float
        Ammonia nitrogen [g N/m3].
    do_g_m3 : float
        Dissolved oxygen [g/m3].
    """

    discharge_m3s: float
    cbod_g_m3: float
    nh3n_g_m3: float
    do_g_m3: float

    def __post_init__(self) -> None:
        for name in ("discharge_m3s", "cbod_g_m3", "nh3n_g_m3", "do_g_m3"):
            _check(f"{name}", getattr(self, name), lo=0.0)


@dataclass(frozen=True, slots=True)
class PointInflow:
    """A point input entering at the upstream end of segment ``segment`` (fully mixed there).

    Attributes
    ----------
    name : str
        Identifier used in error messages (discharger id, tributary name).
    segment : int
        Index of the segment at whose start the water enters (0-based).
    state : WaterState
        Flow [m3/s] and concentrations [g/m3] of the inflow.
    kind : {"discharger", "tributary"}
        What it is; documentation only, the physics is the same.
    """

    name: str
    segment: int
    state: WaterState
    kind: InflowKind = "discharger"


@dataclass(frozen=True, slots=True)
class DOProfile:
    """Dissolved-oxygen profile of a path: values after mixing at each segment start and at its end.

    All arrays have one value per segment; concentrations [g/m3], rates [1/s] at water temperature.
    ``anoxic[i]`` is True where the Streeter-Phelps DO fell to zero somewhere in segment ``i``
    (checked on 129 points per segment): the model is invalid there (it has no anoxic kinetics);
    end-of-segment DO is clipped to 0 and the deficit to saturation, and the next segment starts
    from that clipped state, so downstream values are indicative only.
    """

    discharge_m3s: np.ndarray
    cbod_start_g_m3: np.ndarray
    nh3n_start_g_m3: np.ndarray
    do_start_g_m3: np.ndarray
    cbod_g_m3: np.ndarray
    nh3n_g_m3: np.ndarray
    do_g_m3: np.ndarray
    deficit_g_m3: np.ndarray
    saturation_g_m3: np.ndarray
    kd_per_s: np.ndarray
    kn_per_s: np.ndarray
    ka_per_s: np.ndarray
    anoxic: np.ndarray


_ANOXIC_SAMPLES = 129
_FLOW_RTOL = 1e-6


def _mix(parts: Sequence[WaterState]) -> WaterState:
    """Complete mixing C = sum(Q_i C_i) / sum(Q_i) (mass balance; DESIGN.md section 4)."""
    q = np.array([p.discharge_m3s for p in parts])
    total = float(q.sum())
    if total <= 0.0:
        raise OxygenModelError("mixing of zero total discharge")
    conc = np.array([[p.cbod_g_m3, p.nh3n_g_m3, p.do_g_m3] for p in parts])
    cbod, nh3n, do = (q @ conc) / total
    return WaterState(total, float(cbod), float(nh3n), float(do))


def do_profile_along_path(segments: PathSegments, upstream_state: WaterState,
                          loads: Sequence[PointInflow] = (), *,
                          reaeration_method: ReaerationMethod | str = "qual2k",
                          salinity_ppt: float = 0.0, pressure_atm: float = 1.0) -> DOProfile:
    """Chain mixing and extended Streeter-Phelps kinetics down a river path.

    At each segment start the arriving water and the point inflows there mix completely
    (flow-weighted means); through the segment CBOD decays at kd, NH3-N at kn (:func:`do_sag`), with
    rates corrected to the segment temperature by :func:`arrhenius` (:data:`THETA_CBOD`,
    :data:`THETA_NITRIFICATION`, :data:`THETA_REAERATION`), and ka from :func:`reaeration_rate`
    unless stated. Saturation is :func:`do_saturation` at the segment temperature.

    Parameters
    ----------
    segments : PathSegments
        The path, upstream first.
    upstream_state : WaterState
        Water entering the first segment from upstream.
    loads : sequence of PointInflow
        Dischargers and tributaries; several may enter the same segment.
    reaeration_method : str, default "qual2k"
        Key of :data:`REAERATION_FORMULAS`, used where ``segments.ka20_per_s`` is None.
    salinity_ppt : float, default 0
        Salinity [g/kg] for saturation.
    pressure_atm : float, default 1
        Barometric pressure [atm] for saturation.

    Returns
    -------
    DOProfile
        Values after mixing at each segment start and at each segment end.

    Raises
    ------
    OxygenModelError
        On an inflow at a segment index outside the path, or a segment discharge larger than the
        water that reaches it.

    References
    ----------
    Chapra (1997), lecture 21 (mass balance at a point source; Streeter-Phelps), lecture
    23 (nitrogenous BOD).
    """
    n = segments.n
    by_segment: dict[int, list[PointInflow]] = {}
    for load in loads:
        if not 0 <= load.segment < n:
            raise OxygenModelError(f"inflow {load.name!r}: segment {load.segment} is not in 0..{n - 1}")
        by_segment.setdefault(load.segment, []).append(load)

    temp = segments.temperature_c
    kd = np.asarray(arrhenius(segments.kd20_per_s, temp, THETA_CBOD), dtype=float)
    kn = np.asarray(arrhenius(segments.kn20_per_s, temp, THETA_NITRIFICATION), dtype=float)
    ka20 = (segments.ka20_per_s if segments.ka20_per_s is not None
            else reaeration_rate(segments.velocity_ms, segments.depth_m, reaeration_method))
    ka = np.atleast_1d(np.asarray(arrhenius(ka20, temp, THETA_REAERATION), dtype=float))
    cs = np.atleast_1d(np.asarray(do_saturation(temp, salinity_ppt, pressure_atm), dtype=float))

    out = {k: np.empty(n) for k in ("cb0", "nh0", "do0", "cb", "nh", "do", "d")}
    anoxic = np.zeros(n, dtype=bool)
    arriving = upstream_state
    for i in range(n):
        inflows = by_segment.get(i, [])
        mixed = _mix([arriving, *(f.state for f in inflows)])
        q_seg = float(segments.discharge_m3s[i])
        if q_seg > mixed.discharge_m3s * (1.0 + _FLOW_RTOL):
            names = [f.name for f in inflows]
            raise OxygenModelError(
                f"segment {i}: discharge {q_seg} m3/s exceeds the {mixed.discharge_m3s} m3/s "
                f"arriving (upstream plus inflows {names}); declare the extra water as a PointInflow")
        tt = float(segments.travel_time_s[i])
        d0 = cs[i] - mixed.do_g_m3
        t_grid = np.linspace(0.0, tt, _ANOXIC_SAMPLES)
        deficit = np.asarray(do_sag(t_grid, mixed.cbod_g_m3, mixed.nh3n_g_m3, d0, kd[i], kn[i], ka[i]))
        anoxic[i] = bool(np.any(deficit > cs[i]))
        d_end = min(float(deficit[-1]), float(cs[i]))
        cb_end = mixed.cbod_g_m3 * np.exp(-kd[i] * tt)
        nh_end = mixed.nh3n_g_m3 * np.exp(-kn[i] * tt)
        out["cb0"][i], out["nh0"][i], out["do0"][i] = mixed.cbod_g_m3, mixed.nh3n_g_m3, mixed.do_g_m3
        out["cb"][i], out["nh"][i], out["do"][i], out["d"][i] = cb_end, nh_end, cs[i] - d_end, d_end
        arriving = WaterState(q_seg, float(cb_end), float(nh_end), float(cs[i] - d_end))

    return DOProfile(
        discharge_m3s=segments.discharge_m3s.copy(),
        cbod_start_g_m3=out["cb0"], nh3n_start_g_m3=out["nh0"], do_start_g_m3=out["do0"],
        cbod_g_m3=out["cb"], nh3n_g_m3=out["nh"], do_g_m3=out["do"], deficit_g_m3=out["d"],
        saturation_g_m3=cs, kd_per_s=kd, kn_per_s=kn, ka_per_s=ka, anoxic=anoxic,
    )
