"""``pytest --hint`` works whichever of pytest's own plugins the student disables (issue 18 §7)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pytest_hint(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """``pytest --hint -m pad2d`` on the released stubs' pad2d tests (pad2d is not implemented there)."""
    env = {k: v for k, v in os.environ.items() if k != "COURSE_IMPL"}
    registered = any("hints_plugin" in (ROOT / f).read_text() for f in ("conftest.py", "coursekit/selfcheck.py"))
    plugin = [] if registered else ["-p", "coursekit.hints_plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", *plugin, "--hint", "-m", "pad2d", "-q",
                           "-o", f"cache_dir={tmp_path / 'cache'}", str(ROOT / "tests" / "public" / "test_padding.py"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("disabled", [
    ["-p", "no:cacheprovider"],
    pytest.param(["-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:logging"], marks=pytest.mark.slow),
    pytest.param(["-p", "no:stepwise", "-p", "no:doctest"], marks=pytest.mark.slow),
])
def test_pytest_hint_survives_disabled_plugins(tmp_path, disabled):
    first, second = _pytest_hint(tmp_path, *disabled), _pytest_hint(tmp_path, *disabled)
    for proc in (first, second):
        out = proc.stdout + proc.stderr
        assert "INTERNALERROR" not in out and "Traceback" not in out, out
        assert proc.returncode in (0, 1), out  # the run itself finished (stubs: skipped or failed tests)
    first_out, second_out = first.stdout + first.stderr, second.stdout + second.stderr
    assert "Hint for pad2d, level 1 of 3" in first_out, first_out
    if "no:cacheprovider" in disabled:  # nothing remembers the last level: the first hint again
        assert "Hint for pad2d, level 1 of 3" in second_out, second_out
    else:
        assert "Hint for pad2d, level 2 of 3" in second_out, second_out
