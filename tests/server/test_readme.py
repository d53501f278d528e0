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


# ------------------------------------------------------------------------------ every example line runs
def readme_examples() -> list[str]:
    """Every ``rivertrace`` command in the README's ``sh`` blocks after the first two, in order.

    Continuation lines (trailing backslash) are joined; ``rivertrace serve`` (a server that runs until
    stopped) is left out: tests/server/test_durability.py starts it as a subprocess.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"^ *```sh\n(.+?)\n *```", text, flags=re.DOTALL | re.MULTILINE)[2:]:
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.strip()
            if cmd.startswith("rivertrace ") and not cmd.startswith("rivertrace serve"):
                lines.append(cmd)
    return lines


def test_readme_examples_are_found():
    found = readme_examples()
    assert len(found) >= 20, found  # the parser sees the blocks: a broken regex would run nothing
    assert not [c for c in found if "../" in c or "my_" in c], "examples must use files that ship"


def test_readme_points_nowhere_outside_the_repository():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../" not in text and "shared/" not in text
    for path in re.findall(r"`((?:tests|hydrology|server|tracer|proto)/[\w./-]+)`", text):
        if "..." not in path:  # "tests/data/..." is prose for the folder
            assert (ROOT / path.rstrip("/")).exists(), path


def test_every_readme_example_line_runs(tmp_path, monkeypatch, capsys):
    """Each example, in order, in a scratch directory (so later lines read what earlier lines wrote)."""
    import shlex

    from server.cli import main

    (tmp_path / "tests").symlink_to(ROOT / "tests")  # the shipped files the examples name
    monkeypatch.chdir(tmp_path)
    failures = []
    for cmd in readme_examples():
        argv = shlex.split(cmd, comments=True)[1:]
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse usage errors and --help
            code = stop.code
        _out, err = capsys.readouterr()
        if code != 0:
            failures.append(f"{cmd}\n  exit {code}: {err.strip()[-300:]}")
    assert failures == [], "\n".join(failures)


def test_code_and_data_notes_point_nowhere_outside_the_repository():
    offenders = []
    files = [p for pkg in ("hydrology", "tracer", "server") for p in (ROOT / pkg).rglob("*.py")]
    files += list((ROOT / "tests" / "data").rglob("*.md")) + list((ROOT / "hydrology" / "data").rglob("*.md"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"\S*(?:\.\./shared|shared/data|/work/)\S*", text)]
    assert len(files) > 50 and offenders == []
