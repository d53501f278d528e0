"""The two forecast engines behind one call, chosen by name (a registry, as STYLE.md asks).

``analytic``: moment chaining with exact closed forms (:func:`hydrology.transport.analytic.forecast`), fast
enough for the service's latency budget. ``numerical``: the finite-volume solver on the network
(:func:`hydrology.transport.numerical.simulate`), for time-varying flow and full curves; its run length is
taken from the analytic forecast (the last receptor's window plus 50 %, at most :data:`MAX_RUN_S`),
so no plume is cut short within that.
Both return a :class:`~hydrology.transport.analytic.Forecast` and an xarray Dataset of curves with units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import UnknownModelError
from .analytic import Forecast, Release, forecast

if TYPE_CHECKING:
    import xarray as xr

    from ..network import FeatureKind, RiverNetwork

#: numerical run length = this factor x the analytic engine's latest receptor window [-]
RUN_LENGTH_FACTOR = 1.5
#: run length when nothing lies downstream [s]
MIN_RUN_S = 3600.0
#: longest numerical run [s]: 60 days. A lake of residence time tau keeps a tail for ~11 tau, years
#: for NHDPlus reservoirs, which would be millions of explicit steps; what a duty officer acts on has
#: passed by then, and a receptor still above its threshold at the end says so (end_s None, a warning)
MAX_RUN_S = 60 * 86400.0


def _analytic(net: RiverNetwork, release: Release, kinds: tuple[FeatureKind, ...], threshold_g_m3: float | None,
              wind_ms: float, **_: Any) -> tuple[Forecast, xr.Dataset]:
    fc = forecast(net, release, kinds=kinds, threshold_g_m3=threshold_g_m3, wind_ms=wind_ms)
    return fc, fc.curves()


def _numerical(net: RiverNetwork, release: Release, kinds: tuple[FeatureKind, ...], threshold_g_m3: float | None,
               wind_ms: float, hydrographs: Any = None, **_: Any) -> tuple[Forecast, xr.Dataset]:
    from .numerical import simulate, summarize

    quick = forecast(net, release, kinds=kinds, threshold_g_m3=threshold_g_m3, wind_ms=wind_ms)
    t_hi = quick._params.get("t_hi", np.zeros(0))
    t_end = min(MAX_RUN_S, max(MIN_RUN_S, RUN_LENGTH_FACTOR * float(np.max(t_hi)))) if len(t_hi) else MIN_RUN_S
    ds = simulate(net, release, t_end_s=t_end, kinds=kinds, hydrographs=hydrographs,
                  threshold_g_m3=threshold_g_m3, wind_ms=wind_ms)
    return Forecast(release, tuple(summarize(ds)), "numerical"), ds


ENGINES: dict[str, Callable[..., tuple[Forecast, xr.Dataset]]] = {"analytic": _analytic, "numerical": _numerical}


def run_engine(name: str, net: RiverNetwork, release: Release, *, kinds: tuple[FeatureKind, ...] = ("station", "intake"),
               threshold_g_m3: float | None = None, wind_ms: float = 0.0, hydrographs: Any = None) -> tuple[Forecast, xr.Dataset]:
    """Forecast with the named engine; returns the receptor forecast and the curves Dataset."""
    try:
        engine = ENGINES[name]
    except KeyError:
        raise UnknownModelError(f"unknown engine {name!r}; known: {sorted(ENGINES)}") from None
    return engine(net, release, kinds, threshold_g_m3, wind_ms, hydrographs=hydrographs)
