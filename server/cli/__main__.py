"""``python -m server.cli`` runs the ``rivertrace`` command line."""

import sys

from server.cli import main

sys.exit(main())
