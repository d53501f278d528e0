"""Where does it go: the transport physics of rivertrace in one room.

* :mod:`~hydrology.transport.closed_form`: closed-form solutions of the 1-D advection-dispersion
  equation (Gaussian puff, Ogata-Banks) and travel-time moments; references for tests and a few
  closed-form summaries.
* :mod:`~hydrology.transport.laplace`: numerical inversion of Laplace transforms (de Hoog, Knight
  & Stokes 1982), vectorised over many curves.
* :mod:`~hydrology.transport.kernel`: the one transport kernel: per-reach transfer functions
  (advection, dispersion, decay, OTIS transient storage, fully mixed lakes) multiplied along the
  network from a point source, inverted to impulse, step and ramp responses, and convolved with
  any release history.
* :mod:`~hydrology.transport.batched`: the same kernel for many (source, receptor) pairs at once
  (path sums of log transfers over the network, one FFT per pair): the vulnerability sweep's curves.
* :mod:`~hydrology.transport.analytic`: the default forecast engine, built on the kernel.
* :mod:`~hydrology.transport.numerical`: the finite-volume engine (time-varying flow, full fields).
* :mod:`~hydrology.transport.response`, :mod:`~hydrology.transport.engines`: closed-form summaries
  of the equivalent channel (the attribution's first screen), and the engine registry.

``hydrology.forecast``, ``hydrology.numerical``, ``hydrology.response`` and ``hydrology.engines``
are aliases of the modules here, kept for one release.
"""

from .closed_form import GRAMS_PER_KG, finite_release, gaussian_puff, ogata_banks, reach_moments

__all__ = ["GRAMS_PER_KG", "finite_release", "gaussian_puff", "ogata_banks", "reach_moments"]
