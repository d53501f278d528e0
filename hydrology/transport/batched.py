"""The transport kernel for many (source, receptor) pairs at once: the sweep's curves.

:mod:`hydrology.transport.kernel` walks down from one source. A vulnerability sweep needs every
source x every receptor (20,000 x 500 on the benchmark network), so here the same Laplace-domain
transfer functions are combined the other way round, for all pairs at once.

Transforms. On a path without splits the log of the transfer function is a *sum* over the path's
reaches of log(share) + log(flux transfer) (the kernel's algebra: exp(lambda L) for a channel,
1/(1 + (s + k) tau) for a lake). Give every node its *main* outgoing reach (the largest share; the
only one on a tree); those reaches form a forest rooted at the outlets, and the potential
P(n, s) = sum over the main path from node n to its outlet is one pass over the nodes, shallowest
first, per Laplace node s. The log transform of a pair is then

    log H = [source term on its reach] + P(to_source_reach) - P(from_receptor_reach)
            + log(share of the receptor reach) + [receptor term on its reach],

exactly the kernel's (:meth:`hydrology.transport.kernel._Plan.log_transfer`). It holds where the
receptor's node lies on the main path below the source and all of the mass that reaches the
receptor travels that path: the path's share product equals the pair's mass fraction from the
moment solve of :mod:`hydrology.sweep` (which sums every path). Pairs where it does not (braids that
rejoin, a receptor on a minor branch) and pairs with a lake on the way (a residence time of days
behind a front of minutes, which one uniform time grid cannot resolve; the kernel carries lakes as
exact exponential modes) are flagged for the per-source kernel (:func:`needs_kernel`).

Shared nodes. Pairs are grouped by inversion window as the kernel groups receptors: from the exact
moments of each pair's impulse response (complex steps on the same path sums, the kernel's
``MOMENT_NODES``), start t0 = max(mean - 6 sd, 0) and length T rounded up to a power of sqrt 2
(:func:`hydrology.transport.kernel._windows`), so that all pairs of one class share the nodes
s_j = gamma + i pi j / T (j = 0..K) and the shift to t0 is a factor exp(s t0) per pair.

Inversion. On [t0, t0 + T] the curve is the Fourier series of the Bromwich integral
(Dubner & Abate 1968): f(t0 + tau) = exp(gamma tau) / T Re[G_0 / 2 + sum_j G_j exp(i pi j tau / T)],
G = exp(s t0) F, gamma = ln(1 / :data:`ALIAS_TOL`) / (2T). Evaluated on
a uniform grid it is one inverse real FFT per pair, far cheaper than de Hoog's continued fraction at
many times (0.5 us per point). Without de Hoog's acceleration the series must be long enough by
itself: a window of about 16-23 standard deviations holds a near-Gaussian curve whose coefficients
fall as exp(-(pi j sd / T)^2 / 2), below 3e-10 at j = K = :data:`TERMS` (48); windows that start
at the release (near field, skewed curves) get :data:`NEAR_FIELD_FACTOR` times as many. The tests
compare every pair with the per-source kernel (de Hoog, ``forecast()``).

Summaries. The impulse response h, its derivative (transform s G), the step response S (G / s)
and the box response B = R (S(t) - S(t - T_b)) and its derivative (transforms G (1 - exp(-s T_b))
/ s and G (1 - exp(-s T_b))) come on the same grid of spacing T / K; past the window
B = R (S(inf) - S(t - T_b)) with S(inf) = H(0) exact. Peaks are the highest sample refined on the
cubic Hermite interpolant (values and exact derivatives, error ~ (spacing / sd)^4 / 128, 4e-4 of
the peak at 0.47 sd) and a parabola; threshold crossings are bracketed by the samples and refined on the same cubic.

References
----------
de Hoog, F.R., Knight, J.H. and Stokes, A.N. (1982) SIAM J. Sci. Stat. Comput. 3(3), 357-366.
Dubner, H. and Abate, J. (1968) J. ACM 15(1), 115-123.
Kreft, A. and Zuber, A. (1978) Chem. Eng. Sci. 33, 1471-1480.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from .analytic import illinois
from .closed_form import GRAMS_PER_KG
from .kernel import _moments, _windows, channel_exponent

#: Fourier terms K of a window that starts after the release [-]: a near-Gaussian curve on a window of
#: 16-23 sd has coefficients exp(-(pi K sd / T)^2 / 2) < 3e-10 there; measured against the kernel
#: (tests/hydrology/test_sweep.py): 4e-4 of the peak at most, against 2e-3 with K = 32
TERMS = 48
#: windows that start at the release get this many times the terms [-]: a low-Peclet curve rising
#: from 0 like exp(-a / t) has slowly falling coefficients; with 3 x 48 its tail near the window's end
#: was off by 1 % of the peak (the end of the unit release by 160 %) on the braided test network, with
#: 6 x 48 its edges are within 0.1 % of the kernel's roots (few pairs: near the sources)
NEAR_FIELD_FACTOR = 6
#: aliasing tolerance exp(-2 gamma T) [-]: the series' truncation error is amplified by up to
#: exp(gamma T) = tol^-1/2 at the window's end (1e3 here; the kernel's de Hoog inversion uses 1e-10),
#: while the aliased copies are the curve 2T later times tol: 1e-6 of a box's plateau at most
ALIAS_TOL = 1e-6
#: grid intervals on [t0, t0 + T] per Fourier term [-]: the FFT's length is 2 x this x K. One per
#: term puts samples up to 0.47 sd apart; the Hermite cubic's error there, ~4e-4 of the peak, is
#: what the tests measure (two per term: 1e-5, at 1.3 x the cost of the sweep)
GRID_PER_TERM = 1
#: fine points per grid interval on which a peak is refined on the Hermite cubic [-]
PEAK_REFINE = 8
#: a crossing on the Hermite cubic is refined (Illinois) until its bracket is narrower than this share
#: of the grid interval [-]: far below the cubic's own error (~1e-4 of the interval; see the module doc)
CROSSING_XTOL = 1e-6
#: a pair's series counts as too short when its last coefficients are above this share of G_0 [-]; the
#: sweep then inverts a window that starts at the release by de Hoog's method instead
#: (:mod:`hydrology.transport.batched_exact`). Measured on a point source at Peclet U x / D = 2 ... 15
#: (the sweep's peak, peak time and 1 % edges against forecast()): the worst relative error is ~30 x
#: this tail (tail 1.1e-5: 3e-4; 1.2e-4 at Pe 3: 8e-3; 1.3e-3 at Pe 2, 20 m below the outfall: 5e-2;
#: on the 100,000-reach network tails up to 0.1 left peaks 50 % off). Windows that start after the
#: release are not re-inverted: their tails reach 3e-3 there while their errors stay those of the
#: Hermite cubic (<= 3e-3 in an edge, ~5e-4 in a peak; measured)
SERIES_TOL = 1e-5
#: the coefficients checked against :data:`SERIES_TOL` (the last ones) [-]
SERIES_TAIL = 4
#: a path's share product may differ from the moment solve's mass fraction by this much [-]
#: (round-off) and still be the only path
SINGLE_PATH_RTOL = 1e-9


@dataclass(frozen=True, slots=True)
class MainForest:
    """Every node's main outgoing reach (the largest share) and the forest they form.

    ``parent[n]`` is the node that reach leads to (-1 at an outlet), ``levels`` the nodes by depth
    (1, 2, ...: a node's parent is one level shallower), ``tin``/``tout`` the depth-first entry and
    exit numbers (node a is on the main path below node b iff tin[a] <= tin[b] and tout[b] <= tout[a]).
    """

    main_reach: np.ndarray
    parent: np.ndarray
    levels: tuple[np.ndarray, ...]
    tin: np.ndarray
    tout: np.ndarray


def main_forest(n_nodes: int, from_node: np.ndarray, to_node: np.ndarray, share: np.ndarray) -> MainForest:
    """The main forest of a graph whose reaches (edges) go from a lower to a higher node number."""
    order = np.lexsort((-share, from_node))
    first = np.ones(order.size, bool)
    first[1:] = from_node[order[1:]] != from_node[order[:-1]]
    main = np.full(n_nodes, -1, np.int64)
    main[from_node[order[first]]] = order[first]
    parent = np.where(main >= 0, to_node[np.maximum(main, 0)], -1)
    depth = np.zeros(n_nodes, np.int64)
    for n in range(n_nodes - 1, -1, -1):  # parents have higher numbers: shallowest first
        if parent[n] >= 0:
            depth[n] = depth[parent[n]] + 1
    by_depth = np.argsort(depth, kind="stable")
    cuts = np.searchsorted(depth[by_depth], np.arange(1, int(depth.max(initial=0)) + 2))
    levels = tuple(by_depth[cuts[i]:cuts[i + 1]] for i in range(cuts.size - 1))
    children: list[list[int]] = [[] for _ in range(n_nodes)]
    for n in np.flatnonzero(parent >= 0).tolist():
        children[parent[n]].append(n)
    tin = np.zeros(n_nodes, np.int64)
    tout = np.zeros(n_nodes, np.int64)
    clock = 0
    for root in np.flatnonzero(parent < 0).tolist():
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                tout[node] = clock
                clock += 1
                continue
            tin[node] = clock
            clock += 1
            stack.append((node, True))
            stack.extend((c, False) for c in children[node])
    return MainForest(main, parent, levels, tin, tout)


@dataclass(frozen=True, slots=True)
class Reaches:
    """Per-reach arrays of the linear problem (SI units): as :class:`hydrology.transport.kernel._Plan`."""

    length_m: np.ndarray
    velocity_ms: np.ndarray
    dispersion_m2s: np.ndarray
    storage_ratio: np.ndarray
    storage_exchange_per_s: np.ndarray
    lake: np.ndarray
    discharge_m3s: np.ndarray
    decay_per_s: float

    def exponent(self, s: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """lambda [1/m] and r [m/s] of reaches ``idx`` at nodes ``s`` (shape (len(idx), len(s)))."""
        def col(a: np.ndarray) -> np.ndarray:
            return a[idx][:, None]

        return channel_exponent(s[None, :], col(self.velocity_ms), col(self.dispersion_m2s), self.decay_per_s,
                                col(self.storage_ratio), col(self.storage_exchange_per_s))

    def log_through(self, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """log(flux out / flux in) of reaches ``idx``: lambda L in a channel, -log(1 + (s + k) tau) in a lake."""
        lam, _r = self.exponent(s, idx)
        out = lam * self.length_m[idx][:, None]
        lk = self.lake[idx]
        if lk.any():
            tau = (self.length_m[idx] / self.velocity_ms[idx])[lk][:, None]
            out[lk] = -np.log1p((s[None, :] + self.decay_per_s) * tau)
        return out


def path_sums(forest: MainForest, edge_values: np.ndarray, levels: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """sum of ``edge_values`` (rows: nodes, the value of each node's main reach; any trailing shape
    and dtype) along the main path from every node to its outlet (0 at an outlet); only on the nodes
    of ``levels`` (default: all; see :func:`closure_levels`), the other rows stay 0."""
    levels = forest.levels if levels is None else levels
    p = np.zeros_like(edge_values) if levels is forest.levels else np.empty_like(edge_values)
    if levels:
        p[forest.parent[levels[0]]] = 0  # the outlets (only rows read are written: no page faults elsewhere)
    for level in levels:
        p[level] = edge_values[level] + p[forest.parent[level]]
    return p


def closure_levels(forest: MainForest, nodes: np.ndarray) -> tuple[np.ndarray, ...]:
    """The levels of :class:`MainForest` restricted to ``nodes`` and every node on their main paths
    to the outlets: all that their path sums need."""
    mark = np.zeros(forest.parent.size, bool)
    mark[nodes] = True
    for level in forest.levels[::-1]:  # deepest first: a marked node marks its parent
        up = level[mark[level]]
        mark[forest.parent[up]] = True
    return tuple(level[mark[level]] for level in forest.levels)


def potential(forest: MainForest, share: np.ndarray, reaches: Reaches, graph_reach: np.ndarray,
              s: np.ndarray, levels: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """P(n, s): log of the flux transfer along the main path from every node to its outlet, with the
    shares (see the module doc). ``graph_reach`` maps graph edges to reach indices; ``levels`` as
    :func:`path_sums`. Shape (nodes, len(s))."""
    has = np.flatnonzero(forest.main_reach >= 0) if levels is None else np.concatenate(levels)
    e = np.zeros((forest.parent.size, s.size), complex) if levels is None else np.empty((forest.parent.size, s.size), complex)
    k = forest.main_reach[has]
    e[has] = np.log(share[k])[:, None] + reaches.log_through(s, graph_reach[k])
    return path_sums(forest, e, levels)


def source_terms(reaches: Reaches, s: np.ndarray, reach: np.ndarray, chainage_m: np.ndarray) -> np.ndarray:
    """log of the flux that leaves the reach of a point injection per unit injected: log((U + r) / 2r)
    + lambda (L - c) (the kernel's source term). Shape (len(reach), len(s))."""
    lam, r = reaches.exponent(s, reach)
    u = reaches.velocity_ms[reach][:, None]
    return np.log((u + r) / (2.0 * r)) + lam * (reaches.length_m[reach] - chainage_m)[:, None]


def receptor_terms(reaches: Reaches, s: np.ndarray, reach: np.ndarray, chainage_m: np.ndarray,
                   log_share: np.ndarray) -> np.ndarray:
    """log of the resident concentration at a receptor per unit flux at its reach's from-node: the
    reach's share, lambda x and the flux-to-resident factor 2U / ((U + r) Q) [s/m3]."""
    lam, r = reaches.exponent(s, reach)
    u, q = reaches.velocity_ms[reach][:, None], reaches.discharge_m3s[reach][:, None]
    return log_share[:, None] + lam * chainage_m[:, None] + np.log(2.0 * u / (u + r)) - np.log(q)


def class_nodes(period_s: float, terms: int) -> tuple[float, np.ndarray]:
    """gamma [1/s] and the nodes s_j = gamma + i pi j / T, j = 0..K, then s = 0 (for H(0)) [1/s]."""
    gamma = -np.log(ALIAS_TOL) / (2.0 * period_s)
    s = gamma + 1j * np.pi * np.arange(terms + 1) / period_s
    return float(gamma), np.concatenate([s, [0.0]])


def pair_windows(log_h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window start t0 [s], length T [s] and Fourier terms K [-] of each pair (the kernel's windows,
    placed by the exact moments of the impulse response: ``log_h`` at the kernel's ``MOMENT_NODES``)."""
    mean, var = _moments(log_h)
    t0, period = _windows(mean, np.sqrt(var))
    return t0, period, np.where(t0 > 0, TERMS, NEAR_FIELD_FACTOR * TERMS)


# ------------------------------------------------------------------------------------------ curves
def _grid_intervals(terms: int) -> int:
    """Grid intervals on a window [-]: :data:`GRID_PER_TERM` per term."""
    return GRID_PER_TERM * terms


def _series(g: np.ndarray, gamma: float, period: float, terms: int) -> np.ndarray:
    """f on tau_m = m T / (2K), m = 0..2K, from G_0..G_K (rows): the Fourier series by one inverse FFT."""
    m = _grid_intervals(terms)
    n = 2 * m
    tau = np.arange(m + 1) * (period / m)
    raw = np.fft.irfft(g, n=n, axis=1)[:, :m + 1]
    return raw * (np.exp(gamma * tau) * (n / 2.0) / period)[None, :]


def _hermite(y0: np.ndarray, y1: np.ndarray, d0: np.ndarray, d1: np.ndarray, h: np.ndarray | float,
             u: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolant at fractions ``u`` of intervals of length ``h`` (broadcasting)."""
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * y0 + (u3 - 2 * u2 + u) * h * d0 + (-2 * u3 + 3 * u2) * y1
            + (u3 - u2) * h * d1)


def _peak(t: np.ndarray, y: np.ndarray, dy: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak time and value of rows sampled at ``t`` (uniform per row) with derivatives ``dy``, around
    sample ``best``: the Hermite cubic on the two intervals around it at :data:`PEAK_REFINE` points
    each, then a parabola through the best three. A peak at the first or last sample stays there."""
    rows = np.arange(t.shape[0])
    n = t.shape[1]
    i = np.clip(best, 1, n - 2)
    u = np.linspace(0.0, 1.0, PEAK_REFINE + 1)[None, :]
    h = (t[rows, i + 1] - t[rows, i])[:, None]
    left = _hermite(y[rows, i - 1][:, None], y[rows, i][:, None], dy[rows, i - 1][:, None], dy[rows, i][:, None], h, u)
    right = _hermite(y[rows, i][:, None], y[rows, i + 1][:, None], dy[rows, i][:, None], dy[rows, i + 1][:, None], h, u)
    fine = np.concatenate([left, right[:, 1:]], axis=1)
    fine_t = t[rows, i - 1][:, None] + h * np.arange(2 * PEAK_REFINE + 1)[None, :] / PEAK_REFINE
    j = np.clip(np.argmax(fine, axis=1), 1, 2 * PEAK_REFINE - 1)
    y0, y1, y2 = fine[rows, j - 1], fine[rows, j], fine[rows, j + 1]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.clip(np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0), -1.0, 1.0)
    peak_t = fine_t[rows, j] + off * h[:, 0] / PEAK_REFINE
    peak_y = np.where(denom < 0, y1 - 0.25 * (y0 - y2) * off, y1)
    edge = (best == 0) | (best == n - 1) | (y[rows, best] >= peak_y)
    return np.where(edge, t[rows, best], peak_t), np.where(edge, y[rows, best], peak_y)


def _hermite_minus(y0: np.ndarray, y1: np.ndarray, d0: np.ndarray, d1: np.ndarray, h: np.ndarray, cut: np.ndarray,
                   rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The Hermite cubic of ``rows`` at ``u`` in [0, 1] minus ``cut`` (what a crossing solves for)."""
    return _hermite(y0[rows], y1[rows], d0[rows], d1[rows], h[rows], u) - cut[rows]


def _crossings(t: np.ndarray, y: np.ndarray, dy: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last time each row is at or above ``cut`` (NaN: never), on the Hermite cubic between
    the samples ``t`` (increasing per row), refined by the Illinois variant of regula falsi."""
    rows = np.arange(t.shape[0])
    n = t.shape[1]
    above = y >= cut[:, None]
    has = above.any(axis=1)
    first = np.argmax(above, axis=1)
    last = n - 1 - np.argmax(above[:, ::-1], axis=1)
    out = []
    for inner, rising in ((first, True), (last, False)):
        outer = np.clip(inner - 1 if rising else inner + 1, 0, n - 1)
        a, b = np.minimum(inner, outer), np.maximum(inner, outer)
        ta, tb = t[rows, a], t[rows, b]
        h = tb - ta
        y0, y1, d0, d1 = y[rows, a], y[rows, b], dy[rows, a], dy[rows, b]
        u = illinois(partial(_hermite_minus, y0, y1, d0, d1, h, cut), np.zeros(rows.size), np.ones(rows.size),
                     y0 - cut, y1 - cut, CROSSING_XTOL, bounds=(0.0, 1.0))
        at = np.where(a == b, t[rows, inner], ta + u * h)
        out.append(np.where(has, at, np.nan))
    return out[0], out[1]


def series_converged(g: np.ndarray) -> np.ndarray:
    """Whether each row's Fourier coefficients G_0..G_K have fallen to :data:`SERIES_TOL` of G_0 by the
    last :data:`SERIES_TAIL` terms (see there for what the truncation then costs)."""
    tail = np.max(np.abs(g[:, -SERIES_TAIL:]), axis=1)
    return tail <= SERIES_TOL * np.abs(g[:, 0])


def summarise_class(log_h: np.ndarray, gamma: float, s: np.ndarray, period: float, terms: int, t0: np.ndarray,
                    unit_kg: float, rate_kg_s: np.ndarray, release_s: float, threshold_g_m3: np.ndarray,
                    edge_fraction: float) -> dict[str, np.ndarray]:
    """Summaries of the pairs of one window class from their log transforms.

    Parameters
    ----------
    log_h : ndarray, shape (pairs, K + 2), complex
        log of the resident-concentration transform [per g/s x s... i.e. (g/m3) per g] at the class's
        nodes (:func:`class_nodes`: the Bromwich nodes, then s = 0).
    gamma, s, period, terms : the class's abscissa [1/s], nodes [1/s], window T [s] and K [-].
    t0 : ndarray
        Window start of each pair [s].
    unit_kg : float
        Mass of the unit release [kg].
    rate_kg_s : ndarray
        Worst-case rate [kg/s] (NaN: none).
    release_s : float
        Worst-case duration T_b [s].
    threshold_g_m3 : ndarray
        Threshold per pair [g/m3] (NaN: none).
    edge_fraction : float
        The unit release's edges are at this share of its own peak [-].

    Returns
    -------
    dict of ndarray
        ``arrival_s``, ``peak_s``, ``peak_g_m3``, ``end_s`` (unit release) and ``worst_*`` of the
        same; times [s] after the release, concentrations [g/m3]; ``series_converged`` (bool): False
        where the Fourier series is too short for the curve (:func:`series_converged`): the caller
        re-summarises those (:func:`hydrology.transport.batched_exact.summarise_exact`).
    """
    sb = s[:-1]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        g = GRAMS_PER_KG * np.exp(log_h[:, :-1] + sb[None, :] * t0[:, None])
        final = GRAMS_PER_KG * np.exp(log_h[:, -1].real)  # S(inf) = H(0) [g/m3 per kg/s]
    g[~np.isfinite(g)] = 0.0
    m = _grid_intervals(terms)
    tau = np.arange(m + 1) * (period / m)
    t = t0[:, None] + tau[None, :]
    imp = unit_kg * _series(g, gamma, period, terms)
    dimp = unit_kg * _series(g * sb[None, :], gamma, period, terms)
    best = np.argmax(imp, axis=1)
    peak_s, peak = _peak(t, imp, dimp, best)
    arrival, end = _crossings(t, imp, dimp, edge_fraction * peak)
    res = {"arrival_s": arrival, "peak_s": peak_s, "peak_g_m3": peak, "end_s": end,
           "series_converged": series_converged(g)}
    worst = {key: np.full(t0.size, np.nan) for key in ("arrival_s", "peak_s", "peak_g_m3", "end_s")}
    ok = np.flatnonzero(np.isfinite(rate_kg_s))
    if ok.size:
        rate = rate_kg_s[ok][:, None]
        gk, tk = g[ok], t[ok]
        lag = 1.0 - np.exp(-sb * release_s)
        box = rate * _series(gk * (lag / sb)[None, :], gamma, period, terms)
        dbox = rate * _series(gk * lag[None, :], gamma, period, terms)
        n = box.shape[1]
        best = np.argmax(box, axis=1)
        w_peak_t, w_peak = _peak(tk, box, dbox, best)
        thr = threshold_g_m3[ok]
        # past the window B = R (S(inf) - S(t - T_b)) only falls (its first sample is B at the window's
        # end, to the aliasing): it holds the peak only where B is highest at the window's end, and the
        # end of the time above the threshold only where B is still above it there
        late = np.flatnonzero((best == n - 1) | ((thr > 0) & (box[:, -1] >= thr)))
        if late.size:
            step = _series(gk[late] / sb[None, :], gamma, period, terms)
            tl = tk[late]
            later = tl + release_s
            box2 = rate[late] * (final[ok][late][:, None] - step)
            dbox2 = -rate[late] * imp[ok][late] / unit_kg
            beyond = later > tl[:, -1:]
            b2 = np.argmax(np.where(beyond, box2, -np.inf), axis=1)
            p2_t, p2 = _peak(later, box2, dbox2, b2)
            rows = np.arange(late.size)
            at_first = b2 == np.argmax(beyond, axis=1)  # no valid left neighbour in its set: a sample
            p2_t, p2 = np.where(at_first, later[rows, b2], p2_t), np.where(at_first, box2[rows, b2], p2)
            better = p2 > w_peak[late]
            w_peak_t[late] = np.where(better, p2_t, w_peak_t[late])
            w_peak[late] = np.where(better, p2, w_peak[late])
        worst["peak_s"][ok], worst["peak_g_m3"][ok] = w_peak_t, w_peak
        cross = np.flatnonzero((thr > 0) & (w_peak >= thr))
        if cross.size:
            a, e = _crossings(tk[cross], box[cross], dbox[cross], thr[cross])
            worst["arrival_s"][ok[cross]], worst["end_s"][ok[cross]] = a, e
            both = np.flatnonzero(np.isin(late, cross))  # rows of `late` that cross: both sets
            if both.size:
                # the window's samples, then those past it; samples of the second set that fall inside the
                # window are replaced by copies of the window's first sample (B ~ 0 there: never a crossing)
                li = late[both]
                bc = beyond[both]
                tt = np.concatenate([tk[li], np.where(bc, later[both], tk[li][:, :1])], axis=1)
                yy = np.concatenate([box[li], np.where(bc, box2[both], box[li][:, :1])], axis=1)
                dd = np.concatenate([dbox[li], np.where(bc, dbox2[both], dbox[li][:, :1])], axis=1)
                order = np.argsort(tt, axis=1, kind="stable")
                tt, yy, dd = (np.take_along_axis(v, order, axis=1) for v in (tt, yy, dd))
                a, e = _crossings(tt, yy, dd, thr[li])
                worst["arrival_s"][ok[li]], worst["end_s"][ok[li]] = a, e
    res.update({f"worst_{key}": v for key, v in worst.items()})
    return res


#: Laplace nodes whose path sums are formed at a time [-] (memory: nodes x this x 16 B per array)
NODE_BATCH = 24


class PairTransforms:
    """log H (see the module doc) of single-path pairs at the nodes ``s``, formed on demand by rows.

    The source side (source term + P at the end of its reach) is formed once per source reach and
    chainage, the receptor side (receptor term - P at the start of its reach) once per receptor, and
    a pair's log transform is their sum; pairs on one reach (source above the receptor) are formed
    directly. Path sums are taken only on the main paths from the nodes used (:func:`closure_levels`),
    :data:`NODE_BATCH` Laplace nodes at a time. The graph's edges are the reaches (indices equal).
    """

    def __init__(self, forest: MainForest, share: np.ndarray, reaches: Reaches, graph_from: np.ndarray,
                 graph_to: np.ndarray, s: np.ndarray, source: np.ndarray, receptor: np.ndarray,
                 src_reach: np.ndarray, src_chainage_m: np.ndarray, rec_reach: np.ndarray,
                 rec_chainage_m: np.ndarray) -> None:
        """``source``, ``receptor``: indices of each pair into the per-source arrays ``src_reach``,
        ``src_chainage_m`` [m] and the per-receptor ``rec_reach``, ``rec_chainage_m`` [m]."""
        us, isrc = np.unique(source, return_inverse=True)
        ur, irec = np.unique(receptor, return_inverse=True)
        sr_u, sc_u, rr_u, rc_u = src_reach[us], src_chainage_m[us], rec_reach[ur], rec_chainage_m[ur]
        a, b = graph_to[sr_u], graph_from[rr_u]
        levels = closure_levels(forest, np.r_[a, b])
        self.src_side = source_terms(reaches, s, sr_u, sc_u)
        self.rec_side = receptor_terms(reaches, s, rr_u, rc_u, np.log(share[rr_u]))
        edges = np.arange(share.size)
        for c in range(0, s.size, NODE_BATCH):
            pot = potential(forest, share, reaches, edges, s[c:c + NODE_BATCH], levels)
            self.src_side[:, c:c + NODE_BATCH] += pot[a]
            self.rec_side[:, c:c + NODE_BATCH] -= pot[b]
        self.isrc, self.irec = isrc.reshape(-1), irec.reshape(-1)
        self.reaches, self.s = reaches, s
        self.src_reach, self.rec_reach = src_reach[source], rec_reach[receptor]
        self.src_chainage_m, self.rec_chainage_m = src_chainage_m[source], rec_chainage_m[receptor]

    def rows(self, sl: slice) -> np.ndarray:
        """log H of pairs ``sl``, shape (pairs, len(s))."""
        out = self.src_side[self.isrc[sl]] + self.rec_side[self.irec[sl]]
        same = np.flatnonzero(self.src_reach[sl] == self.rec_reach[sl])
        if same.size:
            reach = self.src_reach[sl][same]
            lam, r = self.reaches.exponent(self.s, reach)
            u, q = self.reaches.velocity_ms[reach][:, None], self.reaches.discharge_m3s[reach][:, None]
            dx = self.rec_chainage_m[sl][same] - self.src_chainage_m[sl][same]
            out[same] = np.log((u + r) / (2.0 * r)) + lam * dx[:, None] + np.log(2.0 * u / (u + r)) - np.log(q)
        return out
