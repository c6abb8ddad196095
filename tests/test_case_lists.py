"""Kept case lists of the property searches (grader/suites/case_lists.py): a passing search's cases are
replayed without hypothesis, and a failure among them is never lost and is still shrunk."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import strategies as st

from grader.suites import base, case_lists
from grader.suites.cases import ConvCase, PoolCase, conv_cases
from grader.suites.outcomes import Fail

PAIRS = st.tuples(st.integers(0, 1000), st.integers(0, 1000))


@pytest.fixture(autouse=True)
def case_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(case_lists.CASE_CACHE_ENV, str(tmp_path))
    return tmp_path


def run(fn, strategy=PAIRS, key="ex/check", max_examples=40) -> list:
    """The cases ``fn`` was called with during one search (``fn`` raises Fail for a wrong answer)."""
    seen: list = []

    def check(ctx, case):
        seen.append(case)
        fn(case)

    base.search_property(None, strategy, check, max_examples, key=key)
    return seen


def passes(case) -> None:
    return None


def test_a_passing_search_keeps_its_cases_and_the_next_one_replays_them_without_hypothesis(monkeypatch):
    first = run(passes)
    assert len(first) == 40
    calls = []
    search = base.find
    monkeypatch.setattr(base, "find", lambda *a, **k: calls.append(1) or search(*a, **k))
    assert run(passes) == first and not calls
    assert run(passes, key="ex/other check") and calls == [1]  # another check: no list, hypothesis runs...
    assert len(run(passes, max_examples=20)) == 20 and calls == [1, 1]  # ...as for another number of examples


def test_a_failure_among_kept_cases_is_shrunk_by_hypothesis() -> None:
    kept = run(passes)
    big = next(c for c in kept if c[0] >= 50)

    def wrong_above_50(case):
        if case[0] >= 50:
            raise Fail(f"wrong for {case}")

    with pytest.raises(Fail, match=r"smallest failing case found: wrong for \(50, 0\)"):
        run(wrong_above_50)
    assert big  # the kept list did hold a failing case


def test_a_kept_failing_case_hypothesis_does_not_draw_again_is_still_reported(case_dir) -> None:
    run(passes)
    (path,) = case_dir.rglob("*.json")
    data = json.loads(path.read_text())
    only = (997, 991)  # kept (as by another run, whose hypothesis drew other constants), not drawn here
    data["cases"].insert(3, {"tuple": list(only)})
    path.write_text(json.dumps(data))

    def wrong_on_one_case(case):
        if case == only:
            raise Fail(f"wrong for {case}")

    with pytest.raises(Fail, match=re.escape(f"smallest failing case found: wrong for {only}")):
        run(wrong_on_one_case)


def test_a_stop_while_replaying_ends_the_search_with_it() -> None:
    kept = run(passes)

    def worker_dies(case):
        if case == kept[3]:
            raise RuntimeError("worker gone")

    with pytest.raises(RuntimeError, match="worker gone"):
        run(worker_dies)


def test_a_failing_search_keeps_nothing(case_dir) -> None:
    def always_wrong(case):
        raise Fail("wrong")

    with pytest.raises(Fail):
        run(always_wrong)
    assert not list(case_dir.rglob("*.json"))


def test_a_damaged_or_foreign_list_is_ignored(case_dir) -> None:
    first = run(passes)
    (path,) = case_dir.rglob("*.json")
    path.write_text("{not json")
    assert run(passes) == first  # hypothesis again
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "key": "ex/another check", "cases": [{"tuple": [1, 1]}]}))
    assert run(passes) == first


def test_off_keeps_nothing(case_dir, monkeypatch) -> None:
    monkeypatch.setenv(case_lists.CASE_CACHE_ENV, "off")
    run(passes)
    assert not list(case_dir.rglob("*.json"))


def test_cases_of_the_suites_survive_the_round_trip() -> None:
    values = [(1, "float64", True, None, 2.5, (3, (4, 5))), [1, 2],
              ConvCase(1, 2, 5, 5, 3, 3, 3, (1, 2), "same", "uint8", True, 7, True),
              PoolCase(2, 1, 6, 7, (2, 3), None, "float64", 9, ties=True)]
    for v in values:
        back = case_lists._decode(json.loads(json.dumps(case_lists._encode(v))))
        assert back == v and type(back) is type(v)
    with pytest.raises(TypeError):
        case_lists._encode({"a": 1})
    with pytest.raises(TypeError):
        case_lists._decode({"case": "Fail", "fields": {}})


def test_composite_strategies_replay_equal_cases(monkeypatch) -> None:
    first = run(passes, strategy=conv_cases(), max_examples=15)
    monkeypatch.setattr(base, "find", lambda *a, **k: pytest.fail("hypothesis ran"))
    assert run(passes, strategy=conv_cases(), max_examples=15) == first


def test_lists_of_old_suite_versions_are_forgotten(case_dir) -> None:
    import os
    import time

    old, recent, foreign = case_dir / ("a" * 32), case_dir / ("b" * 32), case_dir / "not-ours"
    for d in (old, recent, foreign):
        d.mkdir()
    for d in (old, foreign):
        os.utime(d, (time.time() - 8 * 24 * 3600,) * 2)
    run(passes)
    assert not old.exists() and recent.exists() and foreign.exists()
    assert len(list(case_dir.rglob("*.json"))) == 1
