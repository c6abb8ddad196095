"""Loads the self-check plugin (--impl, one marker per exercise, stubs reported as not implemented)
and the staged hints (--hint)."""
pytest_plugins = ["coursekit.selfcheck", "coursekit.hints_plugin"]
