"""Moved to :mod:`hydrology.transport.analytic` (the transport sub-package); this alias stays for one release."""

import sys

from .transport import analytic as _moved

sys.modules[__name__] = _moved
