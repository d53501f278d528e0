"""Moved to :mod:`hydrology.transport.engines` (the transport sub-package); this alias stays for one release."""

import sys

from .transport import engines as _moved

sys.modules[__name__] = _moved
