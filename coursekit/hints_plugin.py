"""``pytest --hint``: after the run, the next hint for each exercise that failed (ships to students).

Each ``pytest --hint`` run shows, per failing (or not yet implemented) exercise, one level more
than the last run showed, up to the course's cap; the levels reached are kept in pytest's cache
(``.pytest_cache``), so ``pytest --hint -m conv2d`` three times climbs conv2d's ladder; with the cache
plugin disabled (``-p no:cacheprovider``) each run shows level 1.
``--hint-level N`` shows level N instead. Register with ``pytest_plugins = ["coursekit.hints_plugin"]``.
"""
from __future__ import annotations


import pytest

CACHE_KEY = "coursekit/hint_levels"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hints", "staged hints")
    group.addoption("--hint", action="store_true", default=False,
                    help="after the run, show the next hint for each failing exercise")
    group.addoption("--hint-level", type=int, default=None, metavar="N",
                    help="with --hint: show level N instead of the next one")


def _exercise_ids(config: pytest.Config) -> set[str]:
    try:
        from coursekit.hints import load_ladders

        return set(load_ladders())
    except Exception:  # no hints file or course: nothing to show, never break the run
        return set()


class _Collector:
    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.stuck: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        unfinished = report.skipped and "not implemented" in str(report.longrepr)
        if not (report.failed or unfinished):
            return
        for name in report.keywords:
            if name in self.ids and name not in self.stuck:
                self.stuck.append(name)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--hint", default=False):
        config.pluginmanager.register(_Collector(_exercise_ids(config)), "coursekit-hint-collector")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    collector: _Collector | None = config.pluginmanager.get_plugin("coursekit-hint-collector")
    if collector is None:
        return
    from coursekit.hints import HintError, get_hint

    tr = terminalreporter
    tr.section("hints")
    if not collector.stuck:
        tr.write_line("no failing exercise: no hint needed")
        return
    cache = getattr(config, "cache", None)  # absent with ``-p no:cacheprovider``: every run then starts at level 1
    reached: dict[str, int] = dict(cache.get(CACHE_KEY, {})) if cache is not None else {}
    wanted_level = config.getoption("--hint-level")
    for exercise in collector.stuck:
        try:
            found = get_hint(exercise, wanted_level or reached.get(exercise, 0) + 1)
        except HintError as exc:
            tr.write_line(f"{exercise}: {exc}")
            continue
        if found is None:
            tr.write_line(f"{exercise}: hints are turned off for this course")
            continue
        reached[exercise] = max(reached.get(exercise, 0), found.level)
        tr.write_line(str(found))
        tr.write_line("")
    if cache is not None:
        cache.set(CACHE_KEY, reached)
