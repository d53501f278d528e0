"""A release history: a non-negative release rate on a time grid, fitted by regularised NNLS.

A source's release is a rate r(t) >= 0 [kg/s], constant on each bin [e_j, e_j+1) of a time grid
(width Delta). The concentration it makes at a station is linear in the rates: bin j contributes
r_j (S(t - e_j) - S(t - e_j+1)), with S the station's step response [g/m3 per kg/s] from the exact
transport kernel (:mod:`hydrology.transport.kernel`). A pulse (one bin), a box (a run of equal bins),
a release still going on (a run to the grid's end) and two separate discharges are all cases of
this one model.

Prior. Each bin is off (probability 1 - pi) or carries a rate drawn from an exponential of mean
1 / lambda (a spike and slab: most of a grid carries no release). pi = :data:`PRIOR_ACTIVE_BINS` / K
(K bins); 1 / lambda is the data's own rate scale, the largest rate of the unpenalised fit. The
exponential's penalty lambda sum r_j = lambda M / Delta depends on the mass only, not on how it is
spread; a Gaussian (ridge) prior would favour spreading (sum r^2 falls as a pulse is cut into many
bins), so a near source explaining a dispersed curve by a long release would gain (found while
writing the tests). A ridge or exponential prior on every bin, with lambda chosen by maximum
evidence, was tried first and fails: every bin the data rule out (most of them) pays ln(lambda / g),
so the evidence drives lambda up until the real release is shrunk (Ruxi: 22 kg of 80).

Fit. With y the observed excess and sigma its error (sensor noise and model error, per sample),
the most probable history on the slab minimises

    1/2 || (A r - y) / sigma ||^2 + lambda sum r_j    subject to r >= 0,

solved as non-negative least squares (Lawson and Hanson 1974, ch. 23; :func:`scipy.optimize.nnls`)
on the Cholesky factor R of G = A^T Sigma^-1 A: || R r - R^-T (A^T Sigma^-1 y - lambda) ||^2 is the
same objective up to a constant. The bins it leaves at zero are taken as off; then the bins it uses
are switched off one at a time, smallest rate first (at most :data:`MAX_PRUNE`), and kept off when
that raises the evidence below (a bin whose small rate the data barely ask for is likelier off).

Evidence. The marginal likelihood p(y | hypothesis) is taken by the Laplace approximation at that
optimum (MacKay 2003, ch. 28; MacKay 1992), on its support: the log-likelihood there; for each bin
used, ln(pi lambda) - lambda r_j, the Gaussian volume of the posterior over the bins used,
(2 pi)^(K_a/2) det(G_aa)^(-1/2), and the share of each one's marginal on r >= 0; for each bin at zero, ln(1 - pi + pi lambda I_j), where I_j is
its one-dimensional posterior integrated over r >= 0 given the gradient g >= 0 that holds it there
(curvature h: the Schur complement, the bins used re-optimised as it moves; correlations among the
bins at zero are left out),
sqrt(pi / (2h)) erfcx(g / sqrt(2h)) (a Mills ratio; 1/g where h = 0), so a bin the data say nothing
about costs nothing. Everything but the likelihood is the Occam factor: each bin used pays
ln(pi lambda x its posterior width), so a history that needs many bins pays for them. (The sum over
other supports is left out: a lower bound, close where one support dominates.)

Summaries (:class:`ReleaseHistory`): mass M = Delta sum r_j; the history's centroid and variance
(each bin a uniform distribution, so a box has variance T^2 / 12 exactly); duration
T = sqrt(12 variance) and start = centroid - T/2 (the box with the same first two moments: exact
for a box, an "equivalent box" for any other history). 90 % intervals: the mass's from the Laplace
posterior directly (it is linear in the rates); start's and duration's as percentiles over draws
from that posterior on the bins used, clipped at zero.

Units: s, kg, kg/s, g/m3.

References
----------
Lawson, C.L. and Hanson, R.J. (1974) Solving Least Squares Problems, Prentice-Hall (NNLS).
MacKay, D.J.C. (1992) Bayesian interpolation, Neural Computation 4, 415-447.
MacKay, D.J.C. (2003) Information Theory, Inference, and Learning Algorithms, Cambridge University
Press, ch. 28.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import nnls
from scipy.special import erfcx, ndtr, ndtri

from hydrology.transport.unit_responses import Responses

#: the prior expects this many bins of a grid to carry a release [-] (module doc: spike and slab)
PRIOR_ACTIVE_BINS = 3.0
#: at most this many bins on the grid [-]
MAX_BINS = 120
#: at most this many bins used are tried off in the search for the support [-]
MAX_PRUNE = 40
#: draws from the Laplace posterior for the intervals [-]
INTERVAL_DRAWS = 400
#: the intervals' coverage [-]
INTERVAL_LEVEL = 0.9
#: a bin counts as used (active) when its rate exceeds this share of the largest rate [-] (round-off of NNLS)
ACTIVE_SHARE = 1e-9


@dataclass(frozen=True, slots=True)
class StationRecord:
    """What one station contributes to a history fit: its samples and the kernel row that models them.

    ``t_s`` [s] on the fit's time axis, ``excess`` [g/m3] above background, ``sigma`` [g/m3] the
    standard deviation of each sample's error (sensor noise and model error), ``row`` the station's
    row in the :class:`~hydrology.transport.unit_responses.Responses` of the hypothesis.
    """

    t_s: np.ndarray
    excess: np.ndarray
    sigma: np.ndarray
    row: int


@dataclass(frozen=True, slots=True)
class ReleaseHistory:
    """A fitted release history (module doc): rates per bin, its summaries with 90 % intervals, and
    its log evidence [-] (ln p(y | hypothesis), Laplace-approximated, the prior rate ``lam`` [s/kg] chosen
    by maximum evidence)."""

    edges_s: np.ndarray
    rate_kg_s: np.ndarray
    mass_kg: float
    mass_kg_interval: tuple[float, float]
    start_s: float
    start_s_interval: tuple[float, float]
    duration_s: float
    duration_s_interval: tuple[float, float]
    log_evidence: float
    log_likelihood: float
    log_occam: float
    lam: float
    bins_used: int

    def mass_between(self, t_lo: float, t_hi: float) -> float:
        """Mass [kg] released in [t_lo, t_hi) [s] (bins cut proportionally)."""
        lo = np.clip(self.edges_s[:-1], t_lo, t_hi)
        hi = np.clip(self.edges_s[1:], t_lo, t_hi)
        return float(np.sum(self.rate_kg_s * (hi - lo)))


def design_matrix(responses: Responses, records: Sequence[StationRecord], edges_s: np.ndarray) -> np.ndarray:
    """(samples, bins) concentration [g/m3] per unit rate [kg/s] in each bin: S(t - e_j) - S(t - e_j+1)."""
    blocks = []
    for rec in records:
        tt = rec.t_s[None, :] - edges_s[:, None]  # (edges, samples)
        s = responses.step(tt, rows=np.full(edges_s.size, rec.row))
        blocks.append((s[:-1] - s[1:]).T)
    return np.vstack(blocks)


def _summaries(edges: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mass [kg], start [s] and duration [s] of a history (or of each row of ``rates``)."""
    width = np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    w = rates * width
    mass = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (w * mid).sum(axis=-1) / mass
        var = (w * ((mid - c[..., None]) ** 2 + width**2 / 12.0)).sum(axis=-1) / mass
    duration = np.sqrt(np.maximum(var, 0.0) * 12.0)
    return mass, c - duration / 2.0, duration


def _solve(gram: np.ndarray, rhs: np.ndarray, lam: float) -> np.ndarray:
    """argmin 1/2 r^T G r - (rhs - lam)^T r over r >= 0, by NNLS on the Cholesky factor: with
    G = R^T R and d = R^-T (rhs - lam 1), || R r - d ||^2 is that objective up to a constant."""
    k = gram.shape[0]
    if k == 0:
        return np.zeros(0)
    jitter = 1e-12 * max(float(np.trace(gram)) / k, 1e-300)  # keeps the factor defined (no data on a bin)
    chol = np.linalg.cholesky(gram + jitter * np.eye(k)).T
    d = solve_triangular(chol.T, rhs - lam, lower=True)
    r, _ = nnls(chol, d, maxiter=50 * k)
    return r


def _evidence(a_w: np.ndarray, y_w: np.ndarray, r: np.ndarray, lam: float, pi: float) -> tuple[float, float, np.ndarray]:
    """ln evidence and ln Occam factor of the history ``r`` (module doc), and its active bins."""
    gram = a_w.T @ a_w
    resid = a_w @ r - y_w
    active = r > ACTIVE_SHARE * max(float(r.max()), 1e-300)
    occam = float(np.sum(math.log(pi * lam) - lam * r[active])) + 0.5 * int(active.sum()) * math.log(2 * math.pi)
    if active.any():
        g_aa = gram[np.ix_(active, active)]
        sign, logdet = np.linalg.slogdet(g_aa)
        occam += -0.5 * logdet if sign > 0 else -math.inf
        # the share of each used bin's marginal posterior on r >= 0 (a rate near zero loses up to half)
        sd = np.sqrt(np.maximum(np.diag(np.linalg.pinv(g_aa)), 1e-300))
        occam += float(np.sum(np.log(np.maximum(ndtr(r[active] / sd), 1e-300))))
    # a bin held at zero: off (1 - pi), or on with its posterior integrated over r >= 0 given the
    # gradient g >= 0 that holds it there, int_0^inf exp(-g r - h r^2 / 2) dr (a Mills ratio; 1/g flat)
    g = np.maximum((a_w.T @ resid)[~active] + lam, 0.0)
    h = np.diag(gram)[~active]
    if active.any():  # its curvature with the bins used re-optimised: the Schur complement
        cross = gram[np.ix_(~active, active)]
        h = h - np.einsum("ij,ij->i", cross, np.linalg.solve(gram[np.ix_(active, active)], cross.T).T)
        h = np.maximum(h, 0.0)
    with np.errstate(divide="ignore", over="ignore"):
        mills = np.where(h > 1e-12 * g**2, np.sqrt(np.pi / (2 * np.maximum(h, 1e-300))) * erfcx(g / np.sqrt(2 * np.maximum(h, 1e-300))),
                         1.0 / np.maximum(g, 1e-300))
    occam += float(np.sum(np.log1p(-pi + pi * lam * mills)))
    return -0.5 * float(resid @ resid) + occam, occam, active


def fit_release_history(responses: Responses, records: Sequence[StationRecord], t_lo_s: float, t_hi_s: float,
                        bin_s: float, *, seed: int = 0) -> ReleaseHistory:
    """Fit a release history on bins of ``bin_s`` [s] from ``t_lo_s`` to ``t_hi_s`` [s] (module doc).

    Parameters
    ----------
    responses : Responses
        The hypothesis's unit responses (:func:`hydrology.transport.kernel.point_source_responses`).
    records : sequence of StationRecord
        Every station that constrains the release (that saw it, and downstream ones that did not).
    t_lo_s, t_hi_s : float
        The span the release may occupy [s] (on the records' time axis).
    bin_s : float
        Bin width [s]; widened so that the grid has at most :data:`MAX_BINS` bins.
    seed : int
        Seed of the posterior draws for the intervals.

    Returns
    -------
    ReleaseHistory
    """
    if not records:
        raise ValueError("a release history needs at least one station record")
    span = max(t_hi_s - t_lo_s, bin_s)
    n_bins = max(1, min(MAX_BINS, math.ceil(span / bin_s)))
    edges = t_lo_s + np.linspace(0.0, span, n_bins + 1)
    a = design_matrix(responses, records, edges)
    y = np.concatenate([r.excess for r in records])
    sigma = np.concatenate([r.sigma for r in records])
    a_w, y_w = a / sigma[:, None], y / sigma
    gram, rhs = a_w.T @ a_w, a_w.T @ y_w
    # the prior's rate scale: the largest rate of the unpenalised fit
    lam = 1.0 / max(float(_solve(gram, rhs, 0.0).max()), 1e-300)
    pi = min(0.5, PRIOR_ACTIVE_BINS / n_bins)
    r = _solve(gram, rhs, lam)
    log_z, log_occam, active = _evidence(a_w, y_w, r, lam, pi)
    # the support: bins switched off one at a time, smallest rate first, while the evidence rises
    allowed = np.ones(n_bins, bool)
    for j in np.argsort(r)[: MAX_PRUNE]:
        if not active[j]:
            continue
        trial = allowed.copy()
        trial[j] = False
        r_t = np.zeros(n_bins)
        r_t[trial] = _solve(gram[np.ix_(trial, trial)], rhs[trial], lam)
        z_t, o_t, a_t = _evidence(a_w, y_w, r_t, lam, pi)
        if z_t > log_z:
            allowed, r, log_z, log_occam, active = trial, r_t, z_t, o_t, a_t
    log_l = log_z - log_occam
    const = -0.5 * float(np.sum(np.log(2 * np.pi * sigma**2)))
    mass, start, duration = _summaries(edges, r)
    # intervals: draws from the Laplace posterior on the bins used, clipped at zero
    draws = np.tile(r, (INTERVAL_DRAWS, 1))
    if active.any():
        cov = np.linalg.pinv(gram[np.ix_(active, active)])
        rng = np.random.default_rng(seed)
        draws[:, active] = np.clip(rng.multivariate_normal(r[active], (cov + cov.T) / 2, INTERVAL_DRAWS,
                                                           method="eigh"), 0.0, None)
    _m_d, s_d, d_d = _summaries(edges, draws)
    q = 100 * np.array([(1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2])

    def iv(v: np.ndarray) -> tuple[float, float]:
        v = v[np.isfinite(v)]
        return (float(np.percentile(v, q[0])), float(np.percentile(v, q[1]))) if v.size else (math.nan, math.nan)

    # the mass is linear in the rates: its interval from the Gaussian, not the clipped draws (clipping
    # raises every draw's mass, so their percentiles can miss the fitted mass on a long history)
    m_sd = 0.0
    if active.any():
        w = np.diff(edges)[active]
        m_sd = math.sqrt(max(float(w @ cov @ w), 0.0))
    z = float(ndtri((1 + INTERVAL_LEVEL) / 2))
    m_iv = (max(float(mass) - z * m_sd, 0.0), float(mass) + z * m_sd)
    return ReleaseHistory(edges, r, float(mass), m_iv, float(start), iv(s_d), float(duration), iv(d_d),
                          log_z + const, log_l + const, log_occam, float(lam), int(active.sum()))
