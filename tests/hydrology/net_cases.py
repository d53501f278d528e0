"""Small hand-built networks shared by the hydrology tests."""

import copy

import numpy as np
import pytest

TRAP = {"slope": 5e-4, "manning_n": 0.03, "bottom_width_m": 20.0, "side_slope": 2.0}


def reach(rid, a, b, length, **kw):
    return {"id": rid, "from_node": a, "to_node": b, "length_m": length, **TRAP, **kw}


def chain_doc(n=2, length=10000.0, q=10.0, **reach_kw):
    """n identical reaches in series, inflow q [m3/s] at the head (the DESIGN.md Manning channel)."""
    nodes = [{"id": f"n{i}"} for i in range(n + 1)]
    reaches = [reach(f"r{i}", f"n{i}", f"n{i + 1}", length, **reach_kw) for i in range(n)]
    return {"name": "chain", "nodes": nodes, "reaches": reaches, "inflows": [{"node": "n0", "discharge_m3s": q}]}


def confluence_doc():
    """Main stem m1 -> m2 -> m3 with tributary t1 joining at node c1; split s into b1/b2 rejoining at j."""
    return {
        "name": "confluence",
        "nodes": [{"id": i} for i in ("h", "c1", "th", "s", "j", "o")],
        "reaches": [
            reach("m1", "h", "c1", 6000.0),
            reach("t1", "th", "c1", 5000.0, bottom_width_m=8.0),
            reach("m2", "c1", "s", 4000.0, bottom_width_m=25.0),
            reach("b1", "s", "j", 3000.0, bottom_width_m=15.0, flow_fraction=0.7),
            reach("b2", "s", "j", 3500.0, bottom_width_m=10.0, flow_fraction=0.3),
            reach("m3", "j", "o", 8000.0, bottom_width_m=25.0),
        ],
        "inflows": [{"node": "h", "discharge_m3s": 8.0}, {"node": "th", "discharge_m3s": 4.0}],
        "stations": [
            {"id": "S-up", "reach": "m1", "chainage_m": 1000.0},
            {"id": "S-m1", "reach": "m1", "chainage_m": 5000.0},
            {"id": "S-trib", "reach": "t1", "chainage_m": 4000.0},
            {"id": "S-m2", "reach": "m2", "chainage_m": 2000.0},
            {"id": "S-b1", "reach": "b1", "chainage_m": 1500.0},
            {"id": "S-m3", "reach": "m3", "chainage_m": 6000.0},
        ],
        "intakes": [{"id": "I-1", "reach": "m3", "chainage_m": 7000.0, "population": 50000}],
    }


@pytest.fixture
def chain():
    return copy.deepcopy(chain_doc())


@pytest.fixture
def confluence():
    return copy.deepcopy(confluence_doc())


#: the Clackamas 1992 rhodamine study (tests/data/tracer_studies/clackamas_1992; see its README)
CLACKAMAS_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent / "data" / "tracer_studies" / "clackamas_1992"
CLACKAMAS_Q = 17.09  # [m3/s], q.inp
CLACKAMAS_DECAY = 8.85e-6  # [1/s], both zones, params.inp


def clackamas_network(reaches):
    """The two OTIS reaches as a network: ``reaches`` = [(length m, D m2/s, A m2, As m2, alpha 1/s)] x 2;
    stations at 2,414 m (end of R1) and 4,828 m."""
    from hydrology.document import network_from_document

    q = CLACKAMAS_Q
    return network_from_document({
        "name": "clackamas", "nodes": [{"id": "n0"}, {"id": "n1"}, {"id": "n2"}],
        "reaches": [{"id": f"R{i + 1}", "from_node": f"n{i}", "to_node": f"n{i + 1}", "length_m": L,
                     "discharge_m3s": q, "velocity_ms": q / A, "dispersion_m2s": D, "storage_ratio": As / A,
                     "storage_exchange_per_s": alpha, "slope": 1e-3}
                    for i, (L, D, A, As, alpha) in enumerate(reaches)],
        "inflows": [{"node": "n0", "discharge_m3s": q}],
        "stations": [{"id": "x2414", "reach": "R1", "chainage_m": 2414.0},
                     {"id": "x4828", "reach": "R2", "chainage_m": 2414.0}]})


def clackamas_observations():
    """(release with the observed x = 0 curve as its inflow boundary [g/m3], {station: (times s, g/m3)}),
    times in seconds after the first x = 0 sample."""
    from hydrology.pollutants import pollutant
    from hydrology.transport.analytic import Release

    bc = np.loadtxt(CLACKAMAS_DIR / "clackamas_x0_boundary_ugL.txt")
    h0 = bc[0, 0]
    release = Release("R1", 0.0, pollutant("tracer", CLACKAMAS_DECAY),
                      inflow_curve=tuple(((h - h0) * 3600.0, c / 1000.0) for h, c in bc))
    obs = {}
    for sid, fname in (("x2414", "clackamas_2414m_ugL.txt"), ("x4828", "clackamas_4828m_ugL.txt")):
        o = np.loadtxt(CLACKAMAS_DIR / fname)
        obs[sid] = ((o[:, 0] - h0) * 3600.0, o[:, 1] / 1000.0)
    return release, obs
