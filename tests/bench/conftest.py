"""Fixtures of the benchmarks (helpers live in bench_util.py, a unique module name)."""

from bench_util import big_network  # noqa: F401 - fixture
