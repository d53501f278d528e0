"""Science (hydrology/, tracer/) never imports gRPC or protobuf; server/ is the only edge."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("grpc", "google.protobuf", "server")


@pytest.mark.parametrize("package", ["hydrology", "tracer"])
def test_science_does_not_import_the_wire_format(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert not offenders, offenders
    assert list((ROOT / package).rglob("*.py")), "the scan found no files: it would pass vacuously"
