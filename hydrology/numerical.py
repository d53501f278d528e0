"""Moved to :mod:`hydrology.transport.numerical` (the transport sub-package); this alias stays for one release."""

import sys

from .transport import numerical as _moved

sys.modules[__name__] = _moved
