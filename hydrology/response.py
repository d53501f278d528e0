"""Moved to :mod:`hydrology.transport.response` (the transport sub-package); this alias stays for one release."""

import sys

from .transport import response as _moved

sys.modules[__name__] = _moved
