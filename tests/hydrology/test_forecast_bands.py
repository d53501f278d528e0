"""Forecast bands on the Ruxi demo basin, checked against an independent solver.

The "truth" is the finite-volume engine (hydrology.transport.numerical.simulate), not the kernel the
bands are built from, on a copy of the Ruxi document whose inflows were multiplied by 0.75 and whose
reaches state dispersion_m2s = 1.5 x the coefficient the hydraulics give at that flow: the scaling is
made in the document, not with hydrology.forecast_bands.scaled_state. The numerical engine agrees with
the kernel to about 0.3 % in arrival on this basin, far inside the bands tested here.
"""

import json
from importlib import resources

import numpy as np
import pytest

from hydrology.document import network_from_document
from hydrology.forecast_bands import (
    BandsError,
    assimilate,
    observation_error_s,
    receptor_bands,
    suspension_window,
)
from hydrology.pollutants import pollutant
from hydrology.transport.analytic import Release, forecast
from hydrology.transport.numerical import simulate, summarize

RELEASE = Release("RX-R03", 1400.0, pollutant("petroleum"), mass_kg=800.0)  # at RX-FOOD-1


def _doc() -> dict:
    return json.loads((resources.files("hydrology") / "data" / "demo" / "ruxi.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def net():
    return network_from_document(_doc())


@pytest.fixture(scope="module")
def truth():
    return {r.id: r for r in summarize(simulate(_doc_scaled(0.75, 1.5), RELEASE, t_end_s=60000.0))}


@pytest.fixture(scope="module")
def prior(net):
    return receptor_bands(net, RELEASE)


def _inside(band: dict, value: float) -> bool:
    return band[0.1] <= value <= band[0.9]


def test_zero_spread_collapses_to_the_kernel_forecast(net):
    bands = receptor_bands(net, RELEASE, flow_sd_ln=0.0, dispersion_sd_ln=0.0)
    fc = forecast(net, RELEASE)
    assert list(bands.receptors) == [r.id for r in fc.receptors]
    for r in fc.receptors:
        b = bands.receptors[r.id]
        for field in ("arrival_s", "peak_s", "peak_g_m3", "end_s"):
            # equal to round-off: the fine grid is exp(log(value)) of the one kernel run
            assert getattr(b, field) == pytest.approx(dict.fromkeys(bands.quantiles, getattr(r, field)), rel=1e-12), (r.id, field)


def _doc_scaled(flow: float, disp: float):
    """Ruxi with inflows x flow and each reach's dispersion stated as disp x the estimator's value."""
    doc = _doc()
    for f in doc["inflows"]:
        f["discharge_m3s"] *= flow
    st = network_from_document(doc).reach_state()
    for r in doc["reaches"]:
        r["dispersion_m2s"] = disp * float(st.dispersion_m2s[st.index[r["id"]]])
    return network_from_document(doc)


@pytest.mark.parametrize("k", [0, 700, 1234, 2080, 4095])
def test_fine_points_match_the_kernel_on_a_network_scaled_in_the_document(prior, k):
    # the spline surrogate between the 5x5 nodes against a direct kernel run at that point, the factors
    # applied to the document (inflows and stated dispersion), not with scaled_state. Measured: times
    # within 0.09 %, peak concentration within 7.4 % (k = 0: dispersion x0.19, the far corner; 1 % inside)
    f, d = float(np.exp(prior.ln_flow[k])), float(np.exp(prior.ln_dispersion[k]))
    ref = forecast(_doc_scaled(f, d), RELEASE).receptor("RX-INTAKE")
    got = prior.fine["RX-INTAKE"]
    for field in ("arrival_s", "peak_s", "end_s"):
        assert got[field][k] == pytest.approx(getattr(ref, field), rel=2e-3), field
    assert got["peak_g_m3"][k] == pytest.approx(ref.peak_g_m3, rel=0.1)


def test_a_threshold_near_the_peak_gives_a_probability_of_arrival(net):
    # intake P50 peak is 17.3 g/m3: at 17 g/m3 some combinations never cross it
    b = receptor_bands(net, RELEASE, threshold_g_m3=17.0).receptors["RX-INTAKE"]
    assert 0.1 < b.p_arrival < 0.9
    assert b.arrival_s[0.1] is not None and b.arrival_s[0.9] is None
    assert b.end_s[0.9] is not None and b.end_s[0.9] > b.arrival_s[0.1]
    start, end = suspension_window(b, margin_s=0.0)
    assert (start, end) == (b.arrival_s[0.1], b.end_s[0.9])


def test_prior_band_at_the_intake_contains_the_truth(net, prior, truth):
    b, t = prior.receptors["RX-INTAKE"], truth["RX-INTAKE"]
    assert _inside(b.arrival_s, t.arrival_s), (b.arrival_s, t.arrival_s)
    assert _inside(b.peak_s, t.peak_s), (b.peak_s, t.peak_s)
    # median of median-1 factors: the unperturbed forecast up to the curvature of the response (2 %)
    assert b.arrival_s[0.5] == pytest.approx(forecast(net, RELEASE).receptor("RX-INTAKE").arrival_s, rel=0.02)


def test_assimilating_an_upstream_arrival_narrows_the_band_and_keeps_the_truth(prior, truth):
    post = assimilate(prior, {"RX-MID": truth["RX-MID"].arrival_s})
    before, after = prior.receptors["RX-INTAKE"], post.receptors["RX-INTAKE"]
    t = truth["RX-INTAKE"]
    assert _inside(after.arrival_s, t.arrival_s), (after.arrival_s, t.arrival_s)
    w0, w1 = before.width_s("arrival_s"), after.width_s("arrival_s")
    print(f"RX-INTAKE arrival P10-P90 width: prior {w0:.0f} s, after RX-MID arrival {w1:.0f} s; truth {t.arrival_s:.0f} s")
    assert w1 < 0.6 * w0  # the MID arrival fixes the travel-time factor; dispersion stays uncertain
    assert after.width_s("peak_s") < before.width_s("peak_s")
    # the posterior flow factor moves towards the truth's 0.75
    assert post.factor_quantiles(0.5)[0] < prior.factor_quantiles(0.5)[0]


def test_assimilating_arrival_and_peak_keeps_both_inside_and_separates_the_factors(prior, truth):
    # An arrival alone mostly fixes the travel-time (flow) factor: with only the RX-MID arrival the
    # intake's peak-time band is [23068, 27487] s and the truth's peak (27553 s) falls 66 s outside it,
    # because a lower flow with a higher dispersion arrives at RX-MID as early as the truth does.
    # The peak time at the same station separates the two factors.
    mid = truth["RX-MID"]
    post = assimilate(prior, {"RX-MID": mid.arrival_s}, observed_peaks={"RX-MID": mid.peak_s})
    before, after, t = prior.receptors["RX-INTAKE"], post.receptors["RX-INTAKE"], truth["RX-INTAKE"]
    assert _inside(after.arrival_s, t.arrival_s), (after.arrival_s, t.arrival_s)
    assert _inside(after.peak_s, t.peak_s), (after.peak_s, t.peak_s)
    print(f"RX-INTAKE with RX-MID arrival+peak: arrival width {after.width_s('arrival_s'):.0f} s "
          f"(prior {before.width_s('arrival_s'):.0f}), peak width {after.width_s('peak_s'):.0f} s "
          f"(prior {before.width_s('peak_s'):.0f}); factors {post.factor_quantiles(0.5)}")
    assert after.width_s("arrival_s") < 0.5 * before.width_s("arrival_s")
    assert after.width_s("peak_s") < 0.5 * before.width_s("peak_s")
    flow, disp = post.factor_quantiles(0.5)
    assert flow < 0.9 and disp > 1.1  # towards the truth's 0.75 and 1.5 from the prior's 1 and 1


def test_suspension_window_spans_p10_arrival_less_margin_to_p90_end(prior):
    b = prior.receptors["RX-INTAKE"]
    start, end = suspension_window(b, margin_s=1800.0)
    assert start == pytest.approx(b.arrival_s[0.1] - 1800.0)
    assert end == b.end_s[0.9]
    assert end > b.end_s[0.5]


def test_observation_error_and_bad_observations(net, prior):
    assert observation_error_s(1000.0, 600.0) == 600.0
    assert observation_error_s(40000.0, 600.0) == pytest.approx(1200.0)
    with pytest.raises(BandsError, match="nowhere"):
        assimilate(prior, {"nowhere": 100.0})
    with pytest.raises(BandsError, match="RX-MID"):
        assimilate(prior, {"RX-MID": float("nan")})
    with pytest.raises(BandsError, match="observed_peaks"):
        assimilate(prior, {}, observed_peaks={"nowhere": 1.0})
    with pytest.raises(BandsError, match="quantiles"):
        receptor_bands(net, RELEASE, quantiles=(0.9, 0.1))
    assert np.isclose(prior.weights.sum(), 1.0)


def test_flow_only_quantiles_are_the_forecasts_at_the_flow_quantiles(net):
    # Arrival falls monotonically with discharge, so with dispersion fixed the P10 (P90) arrival is the
    # forecast at the P90 (P10) flow factor exp(+-1.2816 sd): the reference runs the kernel once on the
    # document with its inflows scaled. Tolerance 0.3 %: the 64 fine points put z = +-1.2816 between
    # two of them (linear reading) plus the spline (measured 0.004 % and 0.07 % here).
    sd, z90 = 0.25, 1.2815515655446004
    b = receptor_bands(net, RELEASE, flow_sd_ln=sd, dispersion_sd_ln=0.0).receptors["RX-INTAKE"]
    fast = forecast(_doc_scaled(float(np.exp(sd * z90)), 1.0), RELEASE).receptor("RX-INTAKE")
    slow = forecast(_doc_scaled(float(np.exp(-sd * z90)), 1.0), RELEASE).receptor("RX-INTAKE")
    assert b.arrival_s[0.1] == pytest.approx(fast.arrival_s, rel=3e-3)
    assert b.arrival_s[0.9] == pytest.approx(slow.arrival_s, rel=3e-3)


def test_hydraulics_of_the_reaches_below_equal_the_whole_network_at_that_flow(net):
    """The bands recompute the hydraulics only of the reaches below the release; per-reach hydraulics make
    that exact: every field of those reaches equals a whole-network recomputation at the same flow."""
    from hydrology.forecast_bands import scaled_state

    st = net.reach_state()
    below = np.array(sorted({st.index["RX-R03"], *(st.index[r] for r in net.all_downstream("RX-R03"))}))
    assert 0 < below.size < len(st.ids)  # a true subset
    part, whole = scaled_state(net, 0.6, 1.7, below), scaled_state(net, 0.6, 1.7)
    for name in ("discharge_m3s", "velocity_ms", "depth_m", "width_m", "area_m2", "dispersion_m2s"):
        np.testing.assert_allclose(getattr(part, name)[below], getattr(whole, name)[below], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(part.discharge_m3s, 0.6 * st.discharge_m3s, rtol=1e-15)


def _quadrature_posterior(bands, obs, receptor, start_sd):
    """Reference for the release-start offset: brute-force quadrature over the offset d on a fine grid
    (+-6 sd, 2,401 points) jointly with the fine points of the factors, weights
    prior(d) x prod_j N(t_j - pred_j(f) - d; s_j), then weighted quantiles of pred_receptor(f) + d.
    Nothing of the conjugate algebra in hydrology.forecast_bands is used."""
    d = np.linspace(-6 * start_sd, 6 * start_sd, 2401)
    logw = -0.5 * (d[None, :] / start_sd) ** 2 + np.zeros((bands.weights.size, 1))
    for (sid, field), (t, s) in obs.items():
        pred = bands.fine[sid][field][:, None]
        logw = logw - 0.5 * ((t - pred - d[None, :]) / s) ** 2
    w = np.exp(logw - logw.max()).ravel()
    out = {}
    for field in ("arrival_s", "peak_s"):
        x = (bands.fine[receptor][field][:, None] + d[None, :]).ravel()
        order = np.argsort(x)
        cdf = np.cumsum(w[order]) / w.sum()
        out[field] = {q: float(np.interp(q, cdf, x[order])) for q in (0.1, 0.5, 0.9)}
    return out


def test_release_start_error_is_integrated_out_as_quadrature_over_the_offset_says(net, truth):
    """The offset's conjugate marginal (module docstring) against brute-force quadrature. Tolerance: 2 %
    of the P10-P90 width; the band evaluates each normal on 7 equal-probability points (the P10 of 7
    such points interpolates to z = -1.33 instead of -1.28, about 2 % of a width of 2.56 sd) while the
    quadrature integrates the offset on a fine grid."""
    start_sd = 900.0
    prior = receptor_bands(net, RELEASE, flow_sd_ln=0.25, dispersion_sd_ln=0.0, start_sd_s=start_sd)
    mid = truth["RX-MID"]
    shifted = {"RX-MID": mid.arrival_s + 1200.0}  # as if the fitted start were 20 min early
    post = assimilate(prior, shifted, observed_peaks={"RX-MID": mid.peak_s + 1200.0}, sampling_interval_s=300.0)
    obs = {("RX-MID", "arrival_s"): (shifted["RX-MID"], observation_error_s(shifted["RX-MID"], 300.0)),
           ("RX-MID", "peak_s"): (mid.peak_s + 1200.0, observation_error_s(mid.peak_s + 1200.0, 300.0))}
    ref = _quadrature_posterior(prior, obs, "RX-INTAKE", start_sd)
    got = post.receptors["RX-INTAKE"]
    for field in ("arrival_s", "peak_s"):
        width = ref[field][0.9] - ref[field][0.1]
        for q in (0.1, 0.5, 0.9):
            assert abs(getattr(got, field)[q] - ref[field][q]) <= 0.02 * width, (field, q, getattr(got, field), ref[field])


def test_a_wrongly_fitted_start_is_corrected_by_the_first_observed_arrival(net, truth):
    """Issue 12, the replay's seed 12: the opening band was made from a start fitted on a partial rising
    limb, and the truth fell outside it. Here the release start is 25 min off (the trace's error) and
    RX-MID's observed arrival (from the finite-volume truth) is assimilated. Without a start error the
    band cannot move the whole plume in time, and the truth at the intake falls outside; with one it
    is inside."""
    from dataclasses import replace as dc_replace
    from datetime import UTC, datetime, timedelta

    true_start = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)
    fitted = dc_replace(RELEASE, start=true_start + timedelta(minutes=25))
    offset = (fitted.start - true_start).total_seconds()
    mid, intake = truth["RX-MID"], truth["RX-INTAKE"]
    seen = {"RX-MID": mid.arrival_s - offset}  # the station's clock, in seconds after the fitted start
    truth_at_intake = intake.arrival_s - offset
    known = assimilate(receptor_bands(net, fitted), seen, sampling_interval_s=300.0).receptors["RX-INTAKE"]
    free = assimilate(receptor_bands(net, fitted, start_sd_s=1800.0), seen, sampling_interval_s=300.0).receptors["RX-INTAKE"]
    assert not _inside(known.arrival_s, truth_at_intake), known.arrival_s
    assert _inside(free.arrival_s, truth_at_intake), (free.arrival_s, truth_at_intake)
    assert free.width_s("arrival_s") < 3600.0  # still a usable band: under an hour
