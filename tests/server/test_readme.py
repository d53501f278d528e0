"""The README's two commands stay true: CI runs the test command verbatim; the demo command exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text)[:2]


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _commands()
    assert demo.endswith("rivertrace demo") and "pip install -e ." in demo
    assert tests.endswith("python -m pytest") and "[test]" in tests


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _commands()[1] in ci
