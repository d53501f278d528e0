"""Numerical inversion of Laplace transforms, vectorised over many curves (de Hoog et al. 1982).

For a function f(t) whose transform F(s) can be evaluated on the Bromwich line Re(s) = gamma, the
inverse on 0 <= t < 2T is the Fourier series

    f(t) = (exp(gamma t) / T) Re[ F(gamma)/2 + sum_k F(gamma + i k pi / T) exp(i k pi t / T) ],

whose discretisation error is sum_{n >= 1} exp(-2 n gamma T) f(t + 2 n T) (Dubner & Abate 1968).
de Hoog, Knight & Stokes accelerate the series by turning its power series in z = exp(i pi t / T)
into a continued fraction (the quotient-difference algorithm) and by estimating the remainder of
that fraction; with 2M + 1 samples of F they reach about 10 significant digits on smooth curves for
M = 16 (measured in ``tests/hydrology/test_laplace.py`` against closed forms and mpmath).

The samples depend only on (gamma, T): one set serves every t in [0, T], which is what makes the
method cheap for whole curves. Curves are inverted on a *window* [t0, t0 + T] by inverting
G(s) = exp(s t0) F(s) (the curve shifted by t0): the part of f before t0 enters the result only
through the term exp(2 gamma T) f(t - 2T), i.e. f at t <= t0 - T, which the caller makes negligible
by its choice of t0 (see :mod:`hydrology.transport.kernel`).

Here gamma = -ln(tol) / (2T) with tol = :data:`DISCRETISATION_TOL`, so the aliasing of a curve of
bounded size is below tol times that size; round-off grows as exp(gamma t) x 1e-16, at most
exp(ln(1/tol)/2) x 1e-16 ~ 1e-11 at t = T.

References
----------
de Hoog, F.R., Knight, J.H. and Stokes, A.N. (1982) An improved method for numerical inversion of
Laplace transforms, SIAM J. Sci. Stat. Comput. 3(3), 357-366.
Dubner, H. and Abate, J. (1968) Numerical inversion of Laplace transforms by relating them to the
finite Fourier cosine transform, J. ACM 15(1), 115-123.
"""

from __future__ import annotations

import numpy as np

#: terms of the accelerated series: 2M + 1 samples of F per window [-] (M = 16: ~1e-10 relative
#: on the puff and step curves of the tests; M = 12 gives ~1e-7)
DEFAULT_TERMS = 16
#: aliasing tolerance exp(-2 gamma T) [-]
DISCRETISATION_TOL = 1e-10


def bromwich_nodes(period_s: np.ndarray, terms: int = DEFAULT_TERMS) -> tuple[np.ndarray, np.ndarray]:
    """Abscissa gamma [1/s] and the 2M + 1 nodes s_k = gamma + i k pi / T [1/s] for each window.

    Parameters
    ----------
    period_s : ndarray, shape (W,)
        Window length T [s] (the series covers [0, 2T); results are used on [0, T]).
    terms : int
        M [-].

    Returns
    -------
    gamma : ndarray, shape (W,)
    s : ndarray, shape (W, 2M + 1), complex
    """
    T = np.asarray(period_s, float)
    gamma = -np.log(DISCRETISATION_TOL) / (2.0 * T)
    k = np.arange(2 * terms + 1)
    return gamma, gamma[:, None] + 1j * np.pi * k[None, :] / T[:, None]


def continued_fraction(samples: np.ndarray) -> np.ndarray:
    """Coefficients d_0..d_2M of the continued fraction (quotient-difference algorithm).

    Parameters
    ----------
    samples : ndarray, shape (R, 2M + 1), complex
        F(s_k) at :func:`bromwich_nodes` for R curves.

    Returns
    -------
    d : ndarray, shape (R, 2M + 1), complex
    """
    a = np.array(samples, dtype=complex)
    a[:, 0] *= 0.5
    n = a.shape[1]
    m_terms = (n - 1) // 2
    d = np.empty_like(a)
    d[:, 0] = a[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = a[:, 1:] / a[:, :-1]  # q_1^(i), i = 0..2M-1
        e = np.zeros_like(q)  # e_0^(i)
        d[:, 1] = -q[:, 0]
        for r in range(1, m_terms + 1):
            m = n - 2 * r
            e = q[:, 1:m + 1] - q[:, :m] + e[:, 1:m + 1]  # e_r^(i), i = 0..2M-2r
            d[:, 2 * r] = -e[:, 0]
            if r < m_terms:
                q = q[:, 1:m] * e[:, 1:m] / e[:, :m - 1]  # q_{r+1}^(i)
                d[:, 2 * r + 1] = -q[:, 0]
    # a curve that is identically zero on the window (all samples 0) gives 0/0: it stays zero
    return np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)


def evaluate(d: np.ndarray, gamma: np.ndarray, period_s: np.ndarray, tau_s: np.ndarray) -> np.ndarray:
    """f(tau) from the continued fraction, with de Hoog's remainder estimate.

    Parameters
    ----------
    d : ndarray, shape (R, 2M + 1)
        From :func:`continued_fraction`.
    gamma, period_s : ndarray, shape (R,)
        Abscissa [1/s] and window T [s] of each curve.
    tau_s : ndarray, shape (R, N)
        Times within each window [s], 0 <= tau <= T.

    Returns
    -------
    f : ndarray, shape (R, N)
    """
    tau = np.asarray(tau_s, float)
    T = np.asarray(period_s, float)[:, None]
    z = np.exp(1j * np.pi * tau / T)
    n = d.shape[1]
    a2 = np.zeros(z.shape, complex)
    b2 = np.ones(z.shape, complex)
    a1 = np.broadcast_to(d[:, :1], z.shape).astype(complex)
    b1 = np.ones(z.shape, complex)
    for k in range(1, n - 1):
        dz = d[:, k:k + 1] * z
        a1, a2 = a1 + dz * a2, a1
        b1, b2 = b1 + dz * b2, b1
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 0.5 * (1.0 + (d[:, n - 2:n - 1] - d[:, n - 1:n]) * z)
        rem = -h * (1.0 - np.sqrt(1.0 + d[:, n - 1:n] * z / h**2))
        rem = np.where(h == 0, 0.0, rem)
        val = (a1 + rem * a2) / (b1 + rem * b2)
        out = np.exp(np.asarray(gamma, float)[:, None] * tau) / T * val.real
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
