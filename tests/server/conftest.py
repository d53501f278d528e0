"""Fixtures of the service tests (helpers live in service_util.py, a unique module name)."""

from service_util import ruxi_doc, service  # noqa: F401 - fixtures
