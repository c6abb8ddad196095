"""Loads the self-check plugin (--impl, one marker per exercise, stubs reported as not implemented)."""
pytest_plugins = ["coursekit.selfcheck"]
