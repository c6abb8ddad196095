"""One sandbox per submission, one forked worker per exercise: what one exercise's code does must not
reach the next exercise's worker, nor the fork server they come from.

Every attack of tests/test_sandbox_attacks.py also runs on a worker forked from a sandbox that outlives
it (its ``+shared`` modes); these tests are about the server itself.
"""
from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import numpy as np
import pytest

from grader.sandbox import launcher
from grader.sandbox.launcher import Sandbox, SandboxLimits, Worker, WorkerError

LIMITS = SandboxLimits(time_limit_s=20, memory_limit_mb=1024, forbidden_imports=("torch",), forbidden_calls=("numpy.convolve",))
MODES = [m for m in ("bwrap", "landlock", "uid") if launcher.isolation_available(m)]
pytestmark = pytest.mark.skipif(not MODES, reason="no sandbox available on this machine")

SOURCE = '''
import ctypes, os, signal
import numpy as np

STATE = []

def remember(x):
    STATE.append(x)
    np.MARK = x                     # numpy's module object, shared by nothing but this process
    return len(STATE)

def recall():
    return [len(STATE), getattr(np, "MARK", None)]

def draw():
    return float(np.random.rand())

def where():
    return os.getcwd()

def ppid():
    return os.getppid()

def kill_parent():
    out = []
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(os.getppid(), sig)
            out.append("sent")
        except OSError as e:
            out.append(type(e).__name__)
    try:
        os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
        out.append("sent")
    except OSError as e:
        out.append(type(e).__name__)
    return out

def parent_memory():
    out = []
    for name in ("mem", "environ", "maps"):
        try:
            with open(f"/proc/{os.getppid()}/{name}", "rb") as f:
                f.read(16)
            out.append("read")
        except OSError as e:
            out.append(type(e).__name__)
    return out

def crash():
    ctypes.string_at(0)

def spin():
    while True:
        pass

def mypid():
    return os.getpid()

def peek(pid):
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.read(1)
        return "read"
    except OSError as e:
        return type(e).__name__

def leave(code):
    os._exit(code)

def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture(params=MODES)
def sandbox(request, tmp_path):
    pkg = tmp_path / "submission" / "exercises"
    pkg.mkdir(parents=True)
    (pkg / "probe.py").write_text(textwrap.dedent(SOURCE))
    with Sandbox(tmp_path / "submission", limits=LIMITS, mode=request.param) as sb:
        yield sb


def worker(sb: Sandbox, **limits) -> Worker:
    lim = SandboxLimits(**{**LIMITS.__dict__, **limits})
    return Worker(sb.student_dir, limits=lim, sandbox=sb)


def call(sb: Sandbox, fn: str, *args):
    with worker(sb) as w:
        return w.call("probe", fn, list(args))


def test_each_exercise_gets_a_fresh_process(sandbox):
    with worker(sandbox) as a:
        assert a.call("probe", "remember", [7]).value == 1
        assert a.call("probe", "recall").value == [1, 7]  # one worker keeps its state between calls
        pid_a = a.applied["pid"]
    with worker(sandbox) as b:
        assert b.call("probe", "recall").value == [0, None]  # ...the next exercise's worker starts clean
        assert b.applied["pid"] != pid_a


def test_workers_draw_their_own_random_numbers(sandbox):
    assert call(sandbox, "draw").value != call(sandbox, "draw").value


def test_each_worker_has_its_own_working_directory(sandbox):
    first, second = call(sandbox, "where").value, call(sandbox, "where").value
    assert first != second and first.startswith(sandbox.scratch) and second.startswith(sandbox.scratch)


def test_a_worker_cannot_stop_or_read_the_fork_server(sandbox):
    with worker(sandbox) as w:
        assert w.call("probe", "kill_parent").value == ["PermissionError"] * 3
        assert w.call("probe", "parent_memory").value[:2] == ["PermissionError"] * 2
    assert call(sandbox, "recall").value == [0, None]  # the server still forks


def test_a_crash_or_a_timeout_costs_only_that_exercise(sandbox):
    with worker(sandbox) as w:
        r = w.call("probe", "crash")
        assert r.status == "crashed" and "SIGSEGV" in r.error.message, r
    with worker(sandbox, time_limit_s=1) as w:
        t0 = time.monotonic()
        assert w.call("probe", "spin").status == "timeout"
        assert time.monotonic() - t0 < 8
    with worker(sandbox) as w:
        assert w.call("probe", "recall").value == [0, None]
        assert w.startup_s is not None


def test_two_workers_run_at_once(sandbox):
    results = {}

    def one(i: int) -> None:
        with worker(sandbox) as w:
            results[i] = (w.call("probe", "remember", [i]).value, w.call("probe", "recall").value)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {0: (1, [1, 0]), 1: (1, [1, 1])}


def test_a_worker_needs_the_view_its_sandbox_shows(sandbox):
    with pytest.raises(WorkerError, match="view"):
        worker(sandbox, forbidden_imports=())


def test_closing_the_sandbox_ends_its_workers(sandbox):
    w = worker(sandbox)
    w.start()
    assert w.call("probe", "remember", [1]).ok
    sandbox.close()
    r = w.call("probe", "recall")
    assert r.status == "crashed", r
    w.close()



def test_a_sandbox_started_from_a_short_lived_thread_outlives_it(sandbox, tmp_path):
    """A fork server dies with the thread that started it (its parent-death signal): sandboxes are
    started from one long-lived thread, so a pool thread's end does not end the submission's sandbox."""
    box = {}

    def start() -> None:
        sb = Sandbox(sandbox.student_dir, limits=LIMITS, mode=sandbox.mode)
        sb.start()
        with worker(sb) as w:  # the server is up (its death signal armed) while this thread lives
            assert w.call("probe", "recall").ok
        box["sb"] = sb

    t = threading.Thread(target=start)
    t.start()
    t.join(60)
    time.sleep(0.5)
    try:
        assert call(box["sb"], "recall").value == [0, None]
    finally:
        box["sb"].close()


def test_a_dead_sandbox_is_replaced_for_the_next_exercise(tmp_path):
    from grader.sandbox.sandbox import Sandboxes

    pkg = tmp_path / "submission" / "exercises"
    pkg.mkdir(parents=True)
    (pkg / "probe.py").write_text(textwrap.dedent(SOURCE))
    with Sandboxes(tmp_path / "submission") as boxes:
        first = boxes.get(LIMITS)
        assert boxes.get(LIMITS) is first  # one sandbox per view
        assert boxes.get(SandboxLimits(**{**LIMITS.__dict__, "time_limit_s": 5})) is first  # per-worker limits differ
        os.kill(first._proc.pid, signal.SIGKILL)  # the sandbox dies (bwrap: its namespace with it)
        deadline = time.monotonic() + 10
        while first.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not first.alive
        second = boxes.get(LIMITS)
        assert second is not first and second.alive
        with Worker(second.student_dir, limits=LIMITS, sandbox=second) as w:
            assert w.call("probe", "recall").value == [0, None]
        assert boxes.get(SandboxLimits(**{**LIMITS.__dict__, "allow_subprocesses": True})) is None  # a private one


def test_a_worker_that_dies_is_told_apart_from_one_that_exits(sandbox):
    """The fork server reaps each worker: its exact return code, so an exit status of 137 is not
    mistaken for SIGKILL (as bwrap's 128 + signal would have it)."""
    r = call(sandbox, "leave", 137)
    assert r.status == "crashed" and "exit status 137" in r.error.message, r
    r = call(sandbox, "kill_self")
    assert r.status == "crashed" and "SIGKILL" in r.error.message, r


def test_a_worker_cannot_read_a_sibling_workers_memory(sandbox):
    """Two exercises of one submission run at once in one sandbox, as the same uid: neither can open
    the other's memory (workers stay undumpable, like their server)."""
    with worker(sandbox) as a:
        pid = a.call("probe", "mypid").value
        assert call(sandbox, "peek", pid).value == "PermissionError"
