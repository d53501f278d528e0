"""STYLE.md: the science packages are mypy clean."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_clean_on_science_packages():
    done = subprocess.run([sys.executable, "-m", "mypy", "hydrology", "tracer"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
