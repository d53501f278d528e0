"""Fixtures of the hydrology tests (helpers live in net_cases.py: a unique module name, because every
test directory's conftest is imported as the module 'conftest')."""

from net_cases import chain, confluence  # noqa: F401 - fixtures
