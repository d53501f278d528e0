"""Exceptions raised by the tracer package.

Every error derives from :class:`TracerError`, itself a :class:`hydrology.exceptions.HydrologyError`
so that one handler at the edge covers both packages, and from the builtin that best describes it
(the WNTR pattern). Messages name the offending thing and its value.
"""

from __future__ import annotations

from hydrology.exceptions import HydrologyError


class TracerError(HydrologyError):
    """Base class of every error raised by :mod:`tracer`."""


class ReadingsFormatError(TracerError, ValueError):
    """A readings table cannot be read at all: missing or unexpected columns, unreadable file.

    Row-level problems (an unknown station, an impossible value) never raise: they are returned as
    :class:`tracer.readings.RejectedRow` and the rest of the table is kept.
    """


class DetectionConfigError(TracerError, ValueError):
    """Detection rules are inconsistent: an unknown rule or override field, a non-positive window."""


class UnknownStationError(TracerError, KeyError):
    """A station id that the station description does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
