"""The gRPC Trace and Forecast over a real server: explicit optional fields (0 degC is 0 degC, a zero
mass or threshold is refused, unset is the documented default) and the attribution's separation
(groups, grab sample, operations checks) in the TraceResponse."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import grpc
import pytest
from service_util import TOKENS, make_server

from hydrology.oxygen import THETA_CBOD
from server.cli import demo_basin_path
from server.client import RivertraceClient
from server.generated.rivertrace.v1 import incidents_pb2
from tracer.scenarios import puhe_replay, ruxi_replay

C = grpc.StatusCode
# the separation tests' network (tests/tracer/two_plants.py), loaded by path: tests/ is not a package
_spec = importlib.util.spec_from_file_location("two_plants", Path(__file__).parents[1] / "tracer" / "two_plants.py")
two_plants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(two_plants)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    running = make_server(tmp_path_factory.mktemp("trace"), TOKENS)
    try:
        with RivertraceClient(f"127.0.0.1:{running.port}", token="t-admin") as c:
            for name, rp in (("puhe", puhe_replay()), ("ruxi", ruxi_replay())):
                c.put_network(name, json.loads(demo_basin_path(name).read_text(encoding="utf-8")))
                c.ingest(name, rp.readings.frame.sort_values("time").assign(unit="mg/L"))
            net = two_plants.network()
            c.put_network("two", two_plants.DOC)
            c.ingest("two", two_plants.readings(net).frame.sort_values("time").assign(unit="mg/L"))
            assert running.pipeline.wait_idle(120)
            yield c
    finally:
        running.stop(grace=1.0)


def _rates(resp):
    return {c.id: c.rate_kg_s for c in resp.candidates}


def test_zero_degrees_is_zero_degrees_and_unset_is_the_default(client):
    station, param = "PH-ZHAIXI", "DO"
    unset = client.trace("puhe", station, param)
    warm = client.trace("puhe", station, param, temperature_c=25.0)
    cold = client.trace("puhe", station, param, temperature_c=0.0)
    assert unset.model == cold.model == "steady_do"
    # unset is the documented default, 25 degC: the same fitted loads
    assert _rates(unset) == pytest.approx(_rates(warm), rel=1e-12)
    # 0 degC: CBOD decays slower (k_d = k_20 theta^(T-20), theta 1.047, QUAL2K/Chapra 2012), so a larger
    # ultimate-CBOD load is needed to explain the same measured deficits. The near-field limit of the
    # Streeter-Phelps deficit (D ~ k_d L t) bounds the ratio by k_d(25)/k_d(0) = theta^25 = 3.16; slower
    # reaeration in cold water makes it smaller. Before the fix 0 was read as 25 (ratio exactly 1).
    for cid, r_warm in _rates(warm).items():
        ratio = _rates(cold)[cid] / r_warm
        assert 1.2 < ratio < THETA_CBOD ** 25, (cid, ratio)


@pytest.mark.parametrize(("temperature", "why"), [(-5.0, "below"), (60.0, "above")])
def test_implausible_temperatures_are_refused(client, temperature, why):
    with pytest.raises(grpc.RpcError) as info:
        client.trace("puhe", "PH-ZHAIXI", "DO", temperature_c=temperature)
    assert info.value.code() == C.INVALID_ARGUMENT
    assert "temperature_c" in info.value.details() and "[-2, 50] degC" in info.value.details()


def _forecast(c, **kw):
    req = incidents_pb2.ForecastRequest(network="ruxi", discharger_id="RX-FOOD-1", pollutant="COD", **kw)
    return c.incident_service.Forecast(req, **c._kw())


@pytest.mark.parametrize(("field", "kw"), [("mass_kg", {"mass_kg": 0.0}), ("mass_kg", {}),
                                           ("threshold_mg_l", {"mass_kg": 10.0, "threshold_mg_l": 0.0})])
def test_zero_mass_threshold_and_missing_mass_are_refused(client, field, kw):
    with pytest.raises(grpc.RpcError) as info:
        _forecast(client, **kw)
    assert info.value.code() == C.INVALID_ARGUMENT
    assert field in info.value.details() and "(0, " in info.value.details()


def test_threshold_unset_is_the_standard_and_set_is_used(client):
    std = _forecast(client, mass_kg=500.0)
    low = _forecast(client, mass_kg=500.0, threshold_mg_l=0.5)
    assert all(r.threshold_mg_l > 0 for r in std.receptors)  # each receptor's standard (COD: 15-40 mg/L)
    assert all(r.threshold_mg_l == 0.5 for r in low.receptors)
    by_id = {r.id: r for r in std.receptors}
    # a lower threshold is crossed earlier (or at all) and left later, at every receptor
    for r in low.receptors:
        s = by_id[r.id]
        if s.HasField("arrival"):
            assert r.HasField("arrival") and r.arrival.ToNanoseconds() <= s.arrival.ToNanoseconds()
            assert r.end.ToNanoseconds() >= s.end.ToNanoseconds()


def test_two_plants_on_one_stretch_are_one_group_with_a_grab_sample(client):
    resp = client.trace("two", "S-DOWN", "COD")
    first = resp.groups[0]
    assert {"P-A", "P-B"} <= set(first.candidate_ids)
    probs = {c.id: c.probability for c in resp.candidates}
    assert list(first.probabilities) == pytest.approx([probs[i] for i in first.candidate_ids])
    # every candidate is in exactly one group
    assert sorted(i for g in resp.groups for i in g.candidate_ids) == sorted(probs)
    assert resp.HasField("grab_sample")
    g = resp.grab_sample
    assert g.reach_id in {"R1", "R2", "R3"} and g.expected_gain_nats > 0 and g.time.seconds > 0
    assert {"P-A", "P-B"} <= set(g.predicted_mg_l)
    assert {c.discharger_id for c in resp.operations_checks} >= {"P-A", "P-B"}
    assert all(c.text_zh and c.text_en for c in resp.operations_checks)


def test_ruxi_food_plant_stands_alone_without_a_grab_sample(client):
    resp = client.trace("ruxi", "RX-OILSPOT", "petroleum")
    assert len(resp.groups[0].candidate_ids) == 1
    assert not resp.HasField("grab_sample")
    assert len(resp.operations_checks) == 0


def test_forecast_bands_over_grpc(client):
    """``ForecastRequest.bands``: each receptor carries its P10/P50/P90 band as absolute times, the same as
    hydrology.forecast_bands gives for that release (called directly), and an intake its suspension window;
    without the flag no band (and no 25 extra kernel runs)."""
    import pandas as pd

    from hydrology.forecast_bands import receptor_bands
    from hydrology.pollutants import pollutant
    from hydrology.transport.analytic import Release
    from hydrology.validate import load_valid
    from server.convert import timestamp

    start = pd.Timestamp("2025-07-15T01:00Z")
    kw = {"mass_kg": 800.0, "start": timestamp(start)}
    req = incidents_pb2.ForecastRequest(network="ruxi", discharger_id="RX-FOOD-1", pollutant="petroleum", bands=True, **kw)
    got = {r.id: r for r in client.incident_service.Forecast(req, **client._kw()).receptors}
    assert not any(r.HasField("band") for r in _forecast(client, **kw).receptors)
    net = load_valid(demo_basin_path("ruxi"))
    f = net.feature("RX-FOOD-1", "discharger")
    ref = receptor_bands(net, Release(f.reach, f.chainage_m, pollutant("petroleum"), mass_kg=800.0, start=start))

    def s(ts):
        return (ts.ToNanoseconds() - start.value) / 1e9

    assert set(got) == set(ref.receptors)
    for rid, b in ref.receptors.items():
        band = got[rid].band
        for field in ("p10", "p50", "p90"):
            q = {"p10": 0.1, "p50": 0.5, "p90": 0.9}[field]
            assert s(getattr(band.arrival, field)) == pytest.approx(b.arrival_s[q], abs=1e-3)
            assert s(getattr(band.peak, field)) == pytest.approx(b.peak_s[q], abs=1e-3)
        assert s(band.arrival.p10) <= s(band.arrival.p50) <= s(band.arrival.p90)
        assert band.p_arrival == pytest.approx(b.p_arrival)
    intake = got["RX-INTAKE"].band
    assert s(intake.suspend_from) == pytest.approx(s(intake.arrival.p10) - 1800.0, abs=1e-3)
    assert s(intake.suspend_until) == pytest.approx(s(intake.end.p90), abs=1e-3)
