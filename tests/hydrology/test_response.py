"""Closed-form response curves (hydrology.transport.response) against brute-force curves on a fine time grid.

The reference is :mod:`hydrology.transport` (Gaussian puff and Ogata-Banks finite release) evaluated on
a 400,000-point grid: independent of the Newton iterations under test.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from hydrology.transport import finite_release, gaussian_puff
from hydrology.transport.response import puff_response, pulse_response

CASES = [  # x [m], U [m/s], D [m2/s], k [1/s], T [s]: high and low Peclet, decay, short and long pulses
    (5000.0, 0.5, 20.0, 0.0, 3600.0),
    (20000.0, 0.3, 80.0, 5e-6, 600.0),
    (800.0, 0.2, 40.0, 0.0, 36000.0),
    (3000.0, 0.05, 60.0, 1e-5, 7200.0),
]


@pytest.mark.parametrize("x,u,d,k,T", CASES)
def test_closed_forms_match_a_fine_grid(x, u, d, k, T):
    """Peaks and threshold crossings against transport's curves on a 400,000-point grid."""
    t = np.linspace(1.0, 30 * x / u + 2 * T, 400_001)
    dt = t[1] - t[0]
    q, mass, rate = 10.0, 5.0, 0.01
    ref = {"puff": gaussian_puff(x, t, mass, q / u, u, d, k), "pulse": finite_release(x, t, rate * 1000.0 / q, T, u, d, k)}
    got = {"puff": puff_response(np.array([x]), np.array([u]), np.array([d]), k, np.array([mass]), np.array([q])),
           "pulse": pulse_response(np.array([x]), np.array([u]), np.array([d]), k, np.array([rate]), T, np.array([q]))}
    for kind, c in ref.items():
        res = got[kind]
        i = int(np.argmax(c))
        # grid peak: the true peak lies within one step; C is flat there to second order
        assert abs(res["peak_s"][0] - t[i]) <= dt
        assert_allclose(res["peak_g_m3"][0], c[i], rtol=1e-6)
        above = np.flatnonzero(c >= 0.01 * c.max())
        # edges at 1 % of the peak: within one grid step of the first and last samples above it
        assert abs(res["arrival_s"][0] - t[above[0]]) <= dt
        assert abs(res["end_s"][0] - t[above[-1]]) <= dt


def test_threshold_above_the_peak_gives_no_edges():
    res = puff_response(np.array([5000.0]), np.array([0.5]), np.array([20.0]), 0.0, np.array([1.0]), np.array([10.0]),
                        threshold_g_m3=1e6, edge_fraction=None)
    assert np.isnan(res["arrival_s"][0]) and np.isnan(res["end_s"][0]) and res["peak_g_m3"][0] > 0
