"""Groups of candidates that cannot be told apart, and the information gain of one more sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.attribution import AttributionResult, Candidate
from tracer.separation import best_sample_time, groups, information_gain


def _cand(cid: str, p: float) -> Candidate:
    return Candidate(cid, "discharger", p, 0.0, 0.0, None, None, None, None, None, None, float(np.log(p)), {}, {})


def _result(probs: dict[str, float]) -> AttributionResult:
    cands = tuple(_cand(k, v) for k, v in probs.items())
    return AttributionResult("S", "COD", "pulse", cands, (), (), None)


def test_groups_split_where_bayes_factor_exceeds_ten():
    # 0.5 / 0.4 = 1.25 and 0.5 / 0.06 = 8.3 (< 10): one group; 0.5 / 0.04 = 12.5 (> 10): the next group
    res = _result({"a": 0.5, "b": 0.4, "c": 0.06, "d": 0.04})
    g = groups(res)
    assert [[c.id for c in grp] for grp in g] == [["a", "b", "c"], ["d"]]


def test_a_dominant_candidate_stands_alone():
    g = groups(_result({"a": 0.98, "b": 0.02}))
    assert [[c.id for c in grp] for grp in g] == [["a"], ["b"]]
    with pytest.raises(ValueError):
        groups(_result({"a": 1.0}), bayes_factor=1.0)


def test_information_gain_limits():
    # identical predictions: the reading says nothing
    assert information_gain([0.5, 0.5], [3.0, 3.0], 0.1) == pytest.approx(0.0, abs=1e-12)
    # predictions 1000 sigma apart: the reading names the candidate, gain = prior entropy ln 2
    assert information_gain([0.5, 0.5], [0.0, 100.0], 0.1) == pytest.approx(np.log(2.0), rel=1e-6)


def test_information_gain_against_monte_carlo():
    # independent reference: sample (label, reading) pairs and average log p(y|i) - log p(y)
    rng = np.random.default_rng(7)
    w = np.array([0.6, 0.3, 0.1])
    mu = np.array([0.0, 1.0, 2.5])
    s = 0.8
    n = 200_000
    lab = rng.choice(3, size=n, p=w)
    y = mu[lab] + s * rng.standard_normal(n)
    lik = np.exp(-0.5 * ((y[:, None] - mu[None, :]) / s) ** 2)
    mc = float(np.mean(np.log(lik[np.arange(n), lab]) - np.log(lik @ w)))
    # Monte-Carlo standard error of this mean is about 0.5/sqrt(n) ~ 1e-3; allow 5e-3
    assert information_gain(w, mu, s) == pytest.approx(mc, abs=5e-3)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=5),
    st.lists(st.floats(-5.0, 5.0), min_size=5, max_size=5),
    st.floats(0.05, 5.0),
)
def test_information_gain_between_zero_and_prior_entropy(ws, mus, sigma):
    w = np.array(ws) / sum(ws)
    g = information_gain(w, mus[: len(w)], sigma)
    entropy = float(-(w * np.log(w)).sum())
    assert 0.0 <= g <= entropy + 1e-9


def test_sample_time_lands_where_predictions_differ():
    # two plumes of equal shape passing a site 2 h apart (a near and a far source): a sample at either
    # peak separates them; a sample long after both (both zero) says nothing
    t = np.arange(0.0, 12 * 3600.0, 600.0)
    near = np.exp(-0.5 * ((t - 3 * 3600.0) / 1800.0) ** 2)
    far = np.exp(-0.5 * ((t - 5 * 3600.0) / 1800.0) ** 2)
    ts, gain = best_sample_time([0.5, 0.5], t, np.vstack([near, far]), 0.05)
    assert min(abs(ts - 3 * 3600.0), abs(ts - 5 * 3600.0)) <= 1800.0
    assert gain == pytest.approx(np.log(2.0), rel=0.05)
    late = information_gain([0.5, 0.5], [near[-1], far[-1]], 0.05)
    assert late < 1e-3
