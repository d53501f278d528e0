"""Exceptions raised by the hydrology package.

Every error derives from :class:`HydrologyError` and from the builtin that best describes it, so
callers can catch either (the WNTR pattern: ``ENKeyError(EpanetException, KeyError)``). Messages name
the offending element, field and value.
"""

from __future__ import annotations


class HydrologyError(Exception):
    """Base class of every error raised by :mod:`hydrology`."""


class NetworkFormatError(HydrologyError, ValueError):
    """A network document is malformed: a missing field, a wrong type, an unparseable value.

    ``problems`` lists every problem found, each a :class:`hydrology.validate.Problem`-like tuple of
    (element kind, element id, field, message), so a user fixes all of them in one pass.
    """

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class NetworkTopologyError(HydrologyError, ValueError):
    """The reach graph is unusable: a cycle, a dangling node, an unknown reach."""


class NetworkValidationError(HydrologyError, ValueError):
    """Validation found errors; ``problems`` holds them all."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class UnknownElementError(HydrologyError, KeyError):
    """A reach, node or feature id that the network does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class HydraulicsError(HydrologyError, ValueError):
    """Hydraulic quantities cannot be computed (no geometry, no velocity, non-physical input)."""


class ConvergenceError(HydrologyError, ArithmeticError):
    """An iterative solver did not converge within its tolerance."""


class UnknownModelError(HydrologyError, KeyError):
    """A model name (dispersion estimator, reaeration formula, standard item) is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
