"""The ``uid`` isolation: grading as root inside a container whose seccomp profile denies namespaces.

Unit tests of :mod:`grader.sandbox.uidmode` (leases, secrets, ACLs) run as root on this machine.
The rest run commands under ``tests/container_sim.py``: root with Docker's default capabilities and a
filter modelled on moby's default seccomp profile, with and without the Landlock calls. There bubblewrap
cannot start, the uid mode is chosen, the reference gets full marks, and a hostile submission in a
Gradescope layout reads nothing it must not and earns nothing. The sandbox attack tests run in that
mode too (``test_sandbox_*.py`` with ``-k uid``).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from grader.sandbox import isolation, uidmode
from grader.sandbox.view import python_view

REPO = Path(__file__).resolve().parents[1]
SIM = [sys.executable, str(REPO / "tests" / "container_sim.py")]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the uid mode and the container simulation need root")
CONTAINER = {"docker-default": [], "docker-without-landlock": ["--no-landlock"]}


def _sim_works() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    try:
        import pyseccomp  # noqa: F401
    except ImportError:
        return "needs pyseccomp"
    p = subprocess.run([*SIM, "--", "true"], capture_output=True, text=True, timeout=60)
    return None if p.returncode == 0 else f"the simulation cannot start here: {p.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def sim() -> None:
    why = _sim_works()
    if why:
        pytest.skip(why)


def in_container(args: list[str], *command: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*SIM, *args, "--", *command], capture_output=True, text=True, timeout=timeout,
                          env=environ, cwd=REPO)


# ------------------------------------------------------------------------------------------- units


def test_the_uid_range_is_configurable_and_checked(monkeypatch):
    monkeypatch.delenv(uidmode.UIDS_ENV, raising=False)
    assert uidmode.uid_range() == range(64000, 64256)
    monkeypatch.setenv(uidmode.UIDS_ENV, "70000-70009")
    assert uidmode.uid_range() == range(70000, 70010)
    for bad in ("0-10", "abc", "70010-70000"):
        monkeypatch.setenv(uidmode.UIDS_ENV, bad)
        with pytest.raises(uidmode.UidModeError):
            uidmode.uid_range()


def test_the_uid_mode_needs_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in uidmode.problem()
    monkeypatch.setattr(isolation, "_bwrap_problem", lambda: "no user namespaces")
    monkeypatch.setattr(isolation, "_landlock_problem", lambda: "Landlock is not available in this kernel")
    with pytest.raises(isolation.NoIsolation) as refused:
        isolation.choose_mode()
    text = str(refused.value)
    assert "uid: the uid mode needs root" in text and "not the student's fault" in text and "graded nothing" in text


@ROOT_ONLY
def test_a_lease_is_exclusive_and_clears_what_the_last_holder_left(monkeypatch):
    monkeypatch.setenv(uidmode.UIDS_ENV, "64990-64991")
    first = uidmode.lease()
    second = uidmode.lease()
    try:
        assert {first.uid, second.uid} == {64990, 64991}
        with pytest.raises(uidmode.UidModeError) as busy:
            uidmode.lease()
        assert busy.value.errno == errno.EBUSY and uidmode.UIDS_ENV in str(busy.value)
        # what a holder leaves behind: a process and a file in /tmp, both the uid's
        left = subprocess.Popen(["sleep", "60"], user=first.uid, group=first.gid, extra_groups=[])
        litter = Path(tempfile.gettempdir()) / f"left-by-{first.uid}-{os.getpid()}"
        litter.write_text("a message to the next student")
        os.chown(litter, first.uid, first.gid)
        first.release()
        assert left.wait(timeout=10) == -signal.SIGKILL
        assert not litter.exists()
        again = uidmode.lease()  # the released uid is free again
        assert again.uid == first.uid
        again.release()
    finally:
        first.release()
        second.release()


@ROOT_ONLY
def test_secrets_lose_other_users_access_but_the_interpreter_stays_reachable(tmp_path):
    course = tmp_path / "course"
    for d in ("grader/suites", "solutions", "venv/bin", "results"):
        (course / d).mkdir(parents=True)
    for f in ("grader/suites/conv2d.py", "solutions/conv.py", "venv/bin/python", "course.yml"):
        (course / f).write_text("secret")
    for p in [course, *course.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    changed = uidmode.lock_secrets([str(course / "venv")], [str(course), "/usr", "/tmp"])
    mode = {str(p.relative_to(course)): p.stat().st_mode & 0o777 for p in course.rglob("*")}
    assert mode["grader"] == mode["solutions"] == mode["results"] == 0o750 and mode["course.yml"] == 0o640
    assert mode["venv"] == 0o755 and mode["venv/bin/python"] == 0o644  # needed by the worker: untouched
    assert course.stat().st_mode & 0o777 == 0o755  # it leads to the interpreter: only its other entries lose access
    assert mode["grader/suites/conv2d.py"] == 0o644  # the folder above already stops other users
    assert sorted(changed) == sorted(str(course / n) for n in ("grader", "solutions", "results", "course.yml"))
    assert Path("/usr").stat().st_mode & 0o005 == 0o005 and Path("/tmp").stat().st_mode & 0o777 == 0o777


def _read_as(uid: int, path: Path) -> str:
    p = subprocess.run(["cat", str(path)], user=uid, group=uid, extra_groups=[], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else "denied"


@ROOT_ONLY
def test_an_acl_hides_a_package_from_one_sandbox_only_until_its_lease_ends(monkeypatch):
    monkeypatch.setenv(uidmode.UIDS_ENV, "64980-64981")
    top = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        os.chmod(top, 0o755)
        pkg = top / "scipy_signal"
        pkg.mkdir(mode=0o755)
        (pkg / "core.py").write_text("compiled secrets")
        os.chmod(pkg / "core.py", 0o644)
        before = pkg.stat().st_mode
        one, other = uidmode.lease(), uidmode.lease()
        try:
            assert _read_as(one.uid, pkg / "core.py") == "compiled secrets"
            one.hide([(str(pkg), uidmode.NO_ACCESS)])
            assert _read_as(one.uid, pkg / "core.py") == "denied"
            assert _read_as(other.uid, pkg / "core.py") == "compiled secrets"  # another sandbox's view is its own
            assert pkg.stat().st_mode == before  # the mode bits (what everyone else gets) are unchanged
        finally:
            one.release()
            other.release()
        assert _read_as(one.uid, pkg / "core.py") == "compiled secrets"
        with pytest.raises(OSError):
            os.getxattr(pkg, "system.posix_acl_access")
        assert pkg.stat().st_mode == before
    finally:
        shutil.rmtree(top)


@ROOT_ONLY
def test_the_view_hides_site_entries_and_forbidden_subpackages_but_shows_allowed_ones():
    view = python_view(("numpy", "scipy"), ("torch", "scipy.signal"))
    hidden = dict(uidmode.hidden_paths(view))
    real_visible = {os.path.realpath(v) for v in view.visible}
    assert not real_visible & set(hidden)
    assert all(hidden[os.path.realpath(s)] == uidmode.SEARCH_ONLY for s in view.site_dirs if os.path.isdir(s))
    import scipy
    import torch

    assert hidden[os.path.realpath(Path(scipy.__file__).parent / "signal")] == uidmode.NO_ACCESS
    assert hidden[os.path.realpath(Path(torch.__file__).parent)] == uidmode.NO_ACCESS


# ------------------------------------------------------------------------------------------- in a container

PROBE = """
from grader.sandbox import isolation
print(isolation._bwrap_problem() is not None, isolation.choose_mode(), isolation.isolation_available())
"""


@pytest.mark.slow
@pytest.mark.parametrize("container", CONTAINER)
def test_in_a_container_bwrap_fails_and_the_uid_mode_is_chosen(sim, container):
    p = in_container(CONTAINER[container], sys.executable, "-c", PROBE, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    bwrap_fails, mode, described = p.stdout.split()
    assert bwrap_fails == "True" and mode == "uid"
    assert described == ("uid+seccomp+rlimits" if container == "docker-without-landlock" else "uid+landlock+seccomp+rlimits")


@pytest.mark.slow
@pytest.mark.parametrize("container", CONTAINER)
def test_the_reference_gets_full_marks_in_a_container(sim, container):
    p = in_container(CONTAINER[container], "sh", "-c",
                     "grader grade solutions --skip mnist_accuracy --json /tmp/r.json >/tmp/log 2>&1; rc=$?; "
                     "cat /tmp/r.json || cat /tmp/log; exit $rc")
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    report = json.loads(p.stdout)
    assert report["isolation"].startswith("uid+")
    assert ("landlock" in report["isolation"]) == (container == "docker-default")
    assert len(report["exercises"]) == 10 and report["score"] == 95  # 80 + 15 bonus: all but mnist_accuracy
    for ex in report["exercises"]:
        assert ex["status"] == "passed" and ex["score"] == ex["max_score"] > 0, ex["id"]


#: Appended to every stub module: at import, try to take what a student must never reach in
#: Gradescope's /autograder; with the reference it would earn full marks, with anything else it says so.
HOSTILE = '''
import glob as _glob, os as _os, sys as _sys
_MODULE = _os.path.basename(__file__)
_leaks = []
def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        _leaks.append(f"{path}: {text[:60]!r}")
        return text
    except OSError:
        return None
_reference = None
for _path in ["/tmp/ag/source/solutions/" + _MODULE, *_glob.glob("/root/.pyenv/versions/*/lib/python*/site-packages/solutions/" + _MODULE)]:
    _reference = _read(_path) or _reference
for _path in ["/tmp/ag/source/grader/suites/conv2d.py", "/tmp/ag/source/course.yml", "/tmp/ag/results/results.json",
              "/tmp/ag/submission/strides.py", *_glob.glob("/root/.cache/convnets-grader/cases/*/*")]:
    _read(_path)
for _dir in ("/tmp/ag", "/tmp/ag/source", "/tmp/ag/results", "/root/.cache/convnets-grader/cases"):
    try:
        _leaks.append(f"{_dir}: {sorted(_os.listdir(_dir))}")
    except OSError:
        pass
try:
    with open("/tmp/ag/results/results.json", "w") as _f:
        _f.write('{"score": 999, "output": "PWNED"}')
    _leaks.append("results.json written")
except OSError:
    pass
try:
    open("/tmp/ag/source/solutions/PWNED", "w").close()
    _leaks.append("bundle written")
except OSError:
    pass
if _reference:
    exec(compile(_reference.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""), __file__, "exec"), globals())
elif _leaks:
    def _tell(*a, **k):
        raise RuntimeError("LEAKED " + repr(_leaks)[:1500])
    for _name, _value in list(globals().items()):
        if callable(_value) and getattr(_value, "__module__", None) == __name__ and not _name.startswith("_"):
            globals()[_name] = _tell
'''

GRADESCOPE_RUN = r"""
set -e
cd /tmp
grader gradescope build /tmp/ag.zip >/dev/null
mkdir -p /tmp/ag/source /tmp/ag/submission /tmp/ag/results
python -c "import zipfile; zipfile.ZipFile('/tmp/ag.zip').extractall('/tmp/ag/source')"
for f in "$REPO"/exercises/*.py; do
  [ "$(basename "$f")" = __init__.py ] && continue
  cp "$f" /tmp/ag/submission/; printf '%s\n' "$HOSTILE" >> "/tmp/ag/submission/$(basename "$f")"
done
(cd /tmp/ag && env -u PYTHONPATH GRADESCOPE_ROOT=/tmp/ag GRADESCOPE_PYTHON=python GRADESCOPE_SKIP=mnist_accuracy \
  bash /tmp/ag/source/run_autograder >/tmp/run.log 2>&1) || { cat /tmp/run.log >&2; exit 1; }
ls /tmp/ag/source/solutions
cat /tmp/ag/results/results.json
"""


@pytest.mark.slow
@pytest.mark.parametrize("container", CONTAINER)
def test_a_hostile_submission_in_gradescope_reads_nothing_and_earns_nothing(sim, container):
    p = in_container(CONTAINER[container], "bash", "-c", GRADESCOPE_RUN, env={"REPO": str(REPO), "HOSTILE": HOSTILE})
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    listing, _, results_text = p.stdout.partition("{")
    results = json.loads("{" + results_text)
    assert "PWNED" not in listing.split() and "PWNED" not in results_text
    assert "LEAKED" not in results_text, results_text[:3000]
    assert results["score"] == 0 and results["tests"], results_text[:2000]
    assert all(t.get("score", 0) == 0 for t in results["tests"])  # hidden checks carry no points of their own
    assert "not implemented" in results_text.lower()  # the stubs ran, confined, and their secrets hunt found nothing


ATTACK_FILES = ("test_sandbox_attacks.py", "test_sandbox_forkserver.py", "test_sandbox_view.py", "test_sandbox_worker.py")


@pytest.mark.slow
@pytest.mark.parametrize("container", CONTAINER)
@pytest.mark.parametrize("tests", ATTACK_FILES)
def test_the_sandbox_attack_tests_pass_in_the_uid_mode_of_a_container(sim, container, tests):
    """Their ``mode`` parametrisation holds ``uid`` wherever it is available: in the container, it is."""
    p = in_container(CONTAINER[container], sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "uid",
                     "-rs", f"tests/{tests}", timeout=1800)
    tail = p.stdout[-3000:]
    assert p.returncode == 0, tail + p.stderr[-2000:]
    summary = p.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, tail
    assert "no sandbox available" not in p.stdout, tail
