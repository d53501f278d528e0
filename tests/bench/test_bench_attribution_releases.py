"""Attribution on releases that last (issue 11's benchmark protocol, first part): a measured baseline.

Incidents (tracer/benchmark.py) on the two demo basins and a 2,000-reach synthetic network:
70 % finite releases ("box": a mass released at a constant rate for 5 minutes to 12 hours) and 30 %
instantaneous pulses; readings from the finite-volume engine (not the attribution's model),
10 % noise, +-20 % flow error, 5 % of readings lost at random and one station offline in 10 % of
incidents; sampled every 5 minutes, every hour and every 4 hours. For each interval: top-1 and top-3
on identifiable incidents beside the nearest-upstream baseline, the first choice's calibration (ECE,
Brier, reliability table) and the errors in release start and mass of right first choices.

This measures the attribution as it is, twice on the same incidents: with the exact pass fitting a
release duration, and with every pulse taken as an instant (tracer.attribution.FINITE_RELEASES).
Issue 11's targets (top-1 >= 90 %, top-3 >= 99 %, ECE <= 0.05 at 5-minute and hourly sampling) are
written beside the figures, not asserted.

Seeds. The reported incidents are drawn with ``np.random.default_rng([interval, len(basin), n])``
(n: the basin's count below). The error budget of tracer.error_budget (its constants) was chosen on
other incidents of the same protocol, never on these: seeds ``[interval, len(basin), m, 7919]`` and
``[interval, len(basin), m, 7920]`` with m = 30, 30, 60 (about 430 detected incidents at 5-minute and
hourly sampling). Beside each ECE the results give the ECE a perfectly calibrated first choice would
have with the same stated probabilities (tracer.benchmark.ece_if_calibrated): with 60 identifiable
incidents that is about 0.1, so an ECE <= 0.05 can only be shown on a few hundred.

Run with `python -m pytest -m bench -s tests/bench/test_bench_attribution_releases.py`; figures go to
tests/bench/results/attribution_releases.json (attribution_releases_instant_model.json) and the
reliability diagrams to tests/bench/results/attribution_reliability*.png.
"""

import numpy as np
import pytest
from bench_util import RESULTS, write_results

from hydrology.document import network_from_document
from hydrology.synthetic import generate_network
from tracer import benchmark as bm
from tracer.scenarios import demo_network

pytestmark = pytest.mark.bench
#: basin -> incidents per sampling interval
N_INCIDENTS = {"ruxi": 60, "puhe": 60, "synthetic-2000": 120}
#: the tuning seeds' last element (module doc), recorded with the results
TUNING_SEEDS = (7919, 7920)
#: station reporting intervals [s]
INTERVALS_S = (300.0, 3600.0, 14400.0)
BOX_SHARE = 0.7
TARGETS = {"top1": 0.90, "top3": 0.99, "ece": 0.05}


def _basins():
    synthetic = network_from_document(generate_network(2000, n_dischargers=400, n_stations=120, seed=7))
    return {"ruxi": bm.Basin("ruxi", demo_network("ruxi"), seed=1),
            "puhe": bm.Basin("puhe", demo_network("puhe"), seed=2),
            "synthetic-2000": bm.Basin("synthetic-2000", synthetic, seed=3)}


def _reliability_png(by_interval, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for label, figs in by_interval.items():
        rows = figs["calibration_identifiable"]["bins"]
        if rows:
            ax.plot([r["mean_probability"] for r in rows], [r["share_right"] for r in rows], marker="o",
                    label=f"{label} (ECE {figs['calibration_identifiable']['ece']})")
    ax.set_xlabel("probability stated for the first choice")
    ax.set_ylabel("share of first choices that were right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Attribution reliability, identifiable incidents")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@pytest.mark.parametrize("finite", [False, True], ids=["instant-model", "duration-model"])
def test_attribution_on_releases_that_last(finite, monkeypatch):
    """``finite``: whether the attribution's exact pass fits a release duration (the same incidents)."""
    from tracer import attribution

    monkeypatch.setattr(attribution, "FINITE_RELEASES", finite)
    suffix = "" if finite else "_instant_model"
    basins = _basins()
    by_interval = {}
    for interval in INTERVALS_S:
        outcomes = []
        for name, n in N_INCIDENTS.items():
            rng = np.random.default_rng([int(interval), len(name), n])
            for _ in range(n):
                kind = "box" if rng.random() < BOX_SHARE else "pulse"
                inc = bm.make_incident(basins[name], rng, release=kind, sample_every_s=interval, faults=True)
                outcomes.append(bm.attribute_incident(inc))
        figs = bm.summarize(outcomes)
        boxes = [o for o in outcomes if o.incident.release == "box" and o.incident.identifiable]
        durations = sorted(o.incident.duration_s for o in boxes)
        figs["box_duration_s_quartiles"] = [round(float(q)) for q in np.percentile(durations, [25, 50, 75])] if durations else None
        figs.pop("failures", None)
        # where the first choice is miscalibrated: its reliability by release kind and by the stated
        # probability's bin (identifiable incidents only, as calibration_identifiable)
        ident = [o for o in outcomes if o.incident.anomaly_station is not None and o.incident.identifiable]
        figs["calibration_by_release"] = {k: bm.calibration([o for o in ident if o.incident.release == k])
                                          for k in ("box", "pulse")}
        by_interval[f"every {int(interval)} s"] = figs
    RESULTS.mkdir(exist_ok=True)
    _reliability_png(by_interval, RESULTS / f"attribution_reliability{suffix}.png")
    summary = {k: {"identifiable": v["identifiable"], "by_release": v["by_release"],
                   "ece": v["calibration_identifiable"]["ece"], "brier": v["calibration_identifiable"]["brier"],
                   "ece_if_calibrated_median": v["calibration_identifiable"].get("ece_if_calibrated_median"),
                   "ece_if_calibrated_p90": v["calibration_identifiable"].get("ece_if_calibrated_p90"),
                   "median_release_time_error_s": v["median_release_time_error_s"],
                   "median_duration_error_s": v["median_duration_error_s"],
                   "median_mass_error": v["median_mass_error"],
                   "calibration_by_release": {r: {"n": c["n"], "ece": c["ece"], "brier": c["brier"]}
                                              for r, c in v["calibration_by_release"].items()}}
               for k, v in by_interval.items()}
    seeds = {"reported": "default_rng([interval, len(basin), n])", "n": N_INCIDENTS,
             "tuning": [f"default_rng([interval, len(basin), m, {t}]), m = 30/30/60" for t in TUNING_SEEDS]}
    write_results(f"attribution_releases{suffix}", {"targets_issue_11": TARGETS, "finite_release_model": finite,
                                                     "seeds": seeds, "summary": summary, "by_interval": by_interval})
    # no target asserted (see the module doc); the run must have produced identifiable incidents at
    # 5-minute and hourly sampling (at 4-hourly few incidents are seen by two samples: reported only)
    assert all(by_interval[f"every {int(i)} s"]["identifiable"]["n"] >= 10 for i in INTERVALS_S[:2])
