"""Which attribution candidates the evidence cannot tell apart, and how much one more sample would help.

Groups: candidates whose Bayes factor to the best is within :data:`GROUP_BAYES_FACTOR` (Jeffreys' 1961
scale: a factor below 10 is at most "substantial", not "strong" evidence) form one group that the
stations cannot tell apart. The Bayes factor between two candidates with equal prior odds is the ratio
of their posterior probabilities, so the group is read off :attr:`Candidate.probability`.

Information gain: the expected reduction in entropy [nats] of the posterior over candidates from one
grab sample whose reading is the candidate's predicted concentration plus Gaussian noise of standard
deviation ``sigma`` (Lindley 1956, "On a measure of the information provided by an experiment"). It is
the mutual information between the candidate label and the reading, computed by Gauss-Hermite
quadrature of the Gaussian mixture; it is >= 0 and 0 when all predictions are equal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tracer.attribution import AttributionResult, Candidate

#: Bayes factor to the best candidate below which candidates cannot be told apart [-]
GROUP_BAYES_FACTOR = 10.0

_GH_NODES = 40


def groups(result: AttributionResult, bayes_factor: float = GROUP_BAYES_FACTOR) -> tuple[tuple[Candidate, ...], ...]:
    """Partition the ranked candidates into groups that cannot be told apart.

    Walking down the ranking, a group starts at its best candidate and holds every following candidate
    whose probability is within ``bayes_factor`` of that best one. Candidates with zero probability are
    left out.

    Parameters
    ----------
    result : AttributionResult
        A ranked attribution (candidates sorted by descending probability).
    bayes_factor : float
        Threshold ratio [-] (> 1).
    """
    if not bayes_factor > 1.0:
        raise ValueError("bayes_factor must be > 1")
    ranked = sorted((c for c in result.candidates if c.probability > 0.0), key=lambda c: -c.probability)
    out: list[tuple[Candidate, ...]] = []
    current: list[Candidate] = []
    for c in ranked:
        if current and current[0].probability <= bayes_factor * c.probability:
            current.append(c)
        else:
            if current:
                out.append(tuple(current))
            current = [c]
    if current:
        out.append(tuple(current))
    return tuple(out)


def information_gain(weights: Sequence[float], predicted: Sequence[float], sigma: float) -> float:
    """Expected entropy reduction [nats] of the candidate posterior from one noisy sample.

    Parameters
    ----------
    weights : sequence of float
        Current probabilities of the candidates [-] (normalised here).
    predicted : sequence of float
        Each candidate's predicted concentration at the sample's place and time [mg/L].
    sigma : float
        Standard deviation of the sample's error [mg/L] (> 0).

    Returns
    -------
    float
        Mutual information I(candidate; reading) [nats], in [0, entropy of ``weights``].
    """
    w = np.asarray(weights, dtype=float)
    mu = np.asarray(predicted, dtype=float)
    if w.shape != mu.shape or w.ndim != 1 or w.size == 0:
        raise ValueError("weights and predicted must be 1-D of equal, non-zero length")
    if not sigma > 0.0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("sigma must be > 0 and weights non-negative with a positive sum")
    w = w / w.sum()
    x, gw = np.polynomial.hermite_e.hermegauss(_GH_NODES)  # weight exp(-x^2/2)
    gw = gw / np.sqrt(2.0 * np.pi)
    # I = sum_i w_i E_{y ~ N(mu_i, s)} [log p(y|i) - log p(y)]
    gain = 0.0
    for wi, mi in zip(w, mu):
        if wi == 0.0:
            continue
        y = mi + sigma * x
        z = (y[:, None] - mu[None, :]) / sigma
        log_lik = -0.5 * z**2  # common normalisation cancels
        log_own = -0.5 * x**2
        m = log_lik.max(axis=1)
        log_mix = m + np.log(np.exp(log_lik - m[:, None]) @ w)
        gain += wi * float(gw @ (log_own - log_mix))
    return max(gain, 0.0)


def best_sample_time(
    weights: Sequence[float], times_s: Sequence[float], predicted: np.ndarray, sigma: float
) -> tuple[float, float]:
    """The sampling time at which one grab sample is expected to separate the candidates most.

    Parameters
    ----------
    weights : sequence of float
        Current probabilities of the candidates [-].
    times_s : sequence of float
        Candidate sampling times [s].
    predicted : ndarray, shape (n_candidates, n_times)
        Each candidate's predicted concentration at the sampling site [mg/L].
    sigma : float
        Standard deviation of the sample's error [mg/L] (> 0).

    Returns
    -------
    tuple of float
        (time [s], expected information gain [nats]) of the best time; the earliest on ties.
    """
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if p.ndim != 2 or p.shape[1] != t.size or t.size == 0:
        raise ValueError("predicted must have shape (n_candidates, len(times_s))")
    gains = np.array([information_gain(weights, p[:, j].tolist(), sigma) for j in range(t.size)])
    j = int(np.argmax(gains))
    return float(t[j]), float(gains[j])
