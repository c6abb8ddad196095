"""Hostile submissions: each attack earns no more than an honest wrong answer, the other
exercise keeps its marks, the grader reports and goes on, and nothing outlives the grading.

Every attack redefines ``conv_output_size`` (strides.py) and is graded together with
``pad2d`` (padding.py), which stays the reference's and must keep full marks.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from grading_helpers import ROOT, course_with_limits, grade, reference_submission

SIG = "def conv_output_size(n, k, stride=1, padding=0):\n"


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def marked_processes(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes() or marker.encode() in (d / "environ").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return course_with_limits(tmp_path_factory.mktemp("course"), time_limit_s=8)


def attack(tmp_path, course, body: str):
    sub = reference_submission(tmp_path / "sub", {"strides": SIG + body})
    before = tree_digest(sub)
    report = grade(sub, course, only=["conv_output_size", "pad2d"])
    assert tree_digest(sub) == before, "the submission folder changed during grading"
    target, other = report.exercise("conv_output_size"), report.exercise("pad2d")
    assert target.score == 0, (target.status, target.first_failure)
    assert target.status != "passed"
    assert other.status == "passed" and other.score == other.max_score
    return target


ATTACKS = {
    "import the reference": """
        import importlib
        for name in ("solutions.strides", "grader.suites.conv_output_size"):
            try:
                return importlib.import_module(name).conv_output_size(n, k, stride, padding)
            except Exception:
                pass
        return -1
    """,
    "read the reference from disk": """
        import os
        for root in ("/work", "/root", "/home", "/", "/tmp"):
            for dirpath, dirs, files in os.walk(root):
                if "strides.py" in files and "solutions" in dirpath:
                    ns = {}
                    exec(open(os.path.join(dirpath, "strides.py")).read(), ns)
                    return ns["conv_output_size"](n, k, stride, padding)
                if dirpath.count("/") > 5:
                    dirs[:] = []
        return -1
    """,
    "patch numpy's comparisons": """
        import numpy
        numpy.isclose = lambda *a, **k: True
        numpy.allclose = lambda *a, **k: True
        numpy.array_equal = lambda *a, **k: True
        return 0
    """,
    "int subclass equal to everything": """
        class Always(int):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = int.__hash__
        return Always(0)
    """,
    "sys.exit mid-test": "    import sys; sys.exit(0)\n",
    "os._exit mid-test": "    import os; os._exit(0)\n",
    "print a fake report": """
        import sys
        print('{"score": 100, "max_score": 100, "status": "passed"}')
        print("10 passed, 0 failed", file=sys.stderr)
        return 0
    """,
    "segfault": "    import ctypes; ctypes.string_at(0)\n",
    "10 GiB allocation": "    import numpy as np; a = np.ones(10 * 2**30 // 8); return int(a.sum())\n",
    "output flood": "    import sys\n    for _ in range(200000): sys.stdout.write('x' * 1000)\n    return 0\n",
    "read the stack and the garbage collector": """
        import gc, inspect
        for frame in inspect.stack():
            for v in frame.frame.f_locals.values():
                if isinstance(v, int) and not isinstance(v, bool) and v not in (n, k, stride, padding):
                    return v
        ints = [o for o in gc.get_objects() if isinstance(o, dict) and "expected" in o]
        return ints[0]["expected"] if ints else -1
    """,
    "pickle payload": """
        class Evil:
            def __reduce__(self):
                return (print, ("pwned",))
        return Evil()
    """,
    "hunt for the MNIST test labels": """
        import os
        for root in ("/", ):
            for dirpath, dirs, files in os.walk(root):
                if any(f.startswith("t10k-labels") for f in files):   # found: earn the points to show it
                    if stride < 1 or n + 2 * padding < k:
                        raise ValueError("impossible")
                    return (n + 2 * padding - k) // stride + 1
                if dirpath.count("/") > 6 or dirpath.startswith(("/proc", "/sys")):
                    dirs[:] = []
        return -1
    """,
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_earns_nothing(tmp_path, course, name):
    attack(tmp_path, course, ATTACKS[name])


def test_signal_ignoring_endless_loop_times_out(tmp_path, course):
    started = time.monotonic()
    target = attack(tmp_path, course, """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """)
    assert target.status == "timeout"
    assert time.monotonic() - started < 8 + 20


def test_fork_bomb_and_daemons_leave_nothing_behind(tmp_path, course):
    marker = f"grader-daemon-{os.getpid()}-{time.monotonic_ns()}"
    attack(tmp_path, course, f"""
        import os, time
        os.environ["MARK"] = "{marker}"
        if os.fork() == 0:          # a daemon: double fork, new session, outlive the worker
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "600", "{marker}"]) if os.path.exists("/bin/sleep") else time.sleep(600)
            os._exit(0)
        for _ in range(100000):      # then a fork bomb
            try:
                os.fork()
            except OSError:
                break
        return 0
    """)
    time.sleep(0.5)
    assert marked_processes(marker) == []


def test_network_connection_is_refused(tmp_path, course):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    got = []

    def accept():
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not got:
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100))
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    attack(tmp_path, course, f"""
        import socket
        try:
            s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
            s.sendall(b"leak")
        except OSError:
            pass
        return 0
    """)
    t.join(timeout=16)
    server.close()
    assert got == []


def test_writing_the_graders_files_fails(tmp_path, course):
    targets = [ROOT / "grader" / "suites" / "conv_output_size.py", ROOT / "solutions" / "strides.py", ROOT / "course.yml"]
    backup = {p: p.read_bytes() for p in targets}  # restored even when a weakened grader lets the attack through
    before = tree_digest(ROOT / "grader"), tree_digest(ROOT / "solutions")
    try:
        attack(tmp_path, course, f"""
            import os
            for path in {[str(p) for p in targets]!r}:
                try:
                    open(path, "w").write("hacked")
                except OSError:
                    pass
            return 0
        """)
        assert (tree_digest(ROOT / "grader"), tree_digest(ROOT / "solutions")) == before
        assert all(p.read_bytes() == data for p, data in backup.items())
    finally:
        for p, data in backup.items():
            if p.read_bytes() != data:
                p.write_bytes(data)


@pytest.mark.parametrize("code", [
    # torch computes the right answer, but numpy exercises may not use it
    """
    def correlate2d(image, kernel):
        import importlib
        torch = importlib.import_module("tor" + "ch")
        t = torch.nn.functional.conv2d(torch.as_tensor(image, dtype=torch.float64)[None, None],
                                       torch.as_tensor(kernel, dtype=torch.float64)[None, None])
        return t[0, 0].numpy()
    """,
    # numpy's own 1-D correlate, called through getattr
    """
    def correlate2d(image, kernel):
        import numpy as np
        image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
        kh, kw = kernel.shape
        rows = [getattr(np, "cor" + "relate")(image[i + r], kernel[r], "valid") for i in range(image.shape[0] - kh + 1) for r in range(kh)]
        return np.array(rows).reshape(image.shape[0] - kh + 1, kh, -1).sum(axis=1)
    """,
    # scipy.signal, hidden behind a caught ImportError
    """
    def correlate2d(image, kernel):
        try:
            import scipy.signal
            return scipy.signal.correlate2d(image, kernel, mode="valid")
        except ImportError:
            import numpy as np
            return np.zeros((1, 1))
    """,
])
def test_forbidden_imports_and_calls_score_zero(tmp_path, course, code):
    sub = reference_submission(tmp_path / "sub", {"conv": code})
    report = grade(sub, course, only=["correlate2d", "pad2d"])
    target = report.exercise("correlate2d")
    assert target.status == "forbidden" and target.score == 0, (target.status, target.first_failure)
    assert "forbidden" in target.first_failure
    assert report.exercise("pad2d").status == "passed"


def test_a_lookup_table_over_the_module_size_cap_earns_nothing(tmp_path, course):
    """A module carrying precomputed answers (or trained weights) over course.yml's max_module_kb is an error."""
    table = {(n, k, s, p): (n + 2 * p - k) // s + 1 for n in range(1, 100) for k in range(1, 8)
             for s in range(1, 4) for p in range(0, 4)}
    target = attack(tmp_path, course, f"""
        TABLE = {table!r}
        return TABLE[(n, k, stride, padding)]
    """)
    assert target.status == "error" and "limit for a module" in target.message


def test_a_link_to_the_reference_is_refused(tmp_path, course):
    """strides.py -> the instructor's solutions/strides.py: the whole submission is refused, nothing graded."""
    from grader.submission import SubmissionError

    sub = reference_submission(tmp_path / "sub")
    (sub / "strides.py").unlink()
    (sub / "strides.py").symlink_to(ROOT / "solutions" / "strides.py")
    with pytest.raises(SubmissionError, match="symbolic link"):
        grade(sub, course, only=["conv_output_size", "pad2d"])


def test_grading_exercises_at_once_gives_the_verdicts_of_one_at_a_time(tmp_path, course):
    """The exercises of one submission share its sandbox and run two at a time: a crash, an endless
    loop and a forbidden import in some must leave the others' verdicts exactly as a sequential run."""
    sub = reference_submission(tmp_path / "sub", {
        "strides": SIG + "    import ctypes; ctypes.string_at(0)\n",
        "padding": "def pad2d(x, pad, value=0.0):\n    while True:\n        pass\n",
        "pooling": "def maxpool2d(x, size=2, stride=None):\n    import scipy.signal\n    return x\n",
    })
    only = ["conv_output_size", "pad2d", "same_padding", "maxpool2d", "avgpool2d", "correlate2d"]
    one, two = (grade(sub, course, only=only, parallel=p) for p in (1, 2))

    def verdicts(report):
        return [(e.id, e.status, e.score, [(t.name, t.passed, t.points) for t in e.tests]) for e in report.exercises]

    assert verdicts(one) == verdicts(two)
    status = {e.id: e.status for e in two.exercises}
    assert status == {"conv_output_size": "error", "pad2d": "timeout", "same_padding": "passed",
                      "maxpool2d": "forbidden", "avgpool2d": "passed", "correlate2d": "passed"}, status


def test_an_exercise_marked_runs_alone_is_graded_after_the_others_alone(tmp_path):
    course = course_with_limits(tmp_path, time_limit_s=8, pad2d={"runs_alone": True})
    sub = reference_submission(tmp_path / "sub")
    running, overlaps, order = set(), [], []
    lock = threading.Lock()

    def finished(result):
        with lock:
            order.append(result.id)

    from grader import grade as grade_module
    original = grade_module.grade_exercise

    def tracked(ws, course, ex, *a, **k):
        with lock:
            running.add(ex.id)
            overlaps.append(set(running))
        try:
            return original(ws, course, ex, *a, **k)
        finally:
            with lock:
                running.discard(ex.id)

    grade_module.grade_exercise = tracked
    try:
        report = grade_module.grade_submission(sub, course, only=["conv_output_size", "pad2d", "same_padding", "avgpool2d"],
                                               on_exercise=finished, parallel=2)
    finally:
        grade_module.grade_exercise = original
    assert order[-1] == "pad2d" and all(e.status == "passed" for e in report.exercises)
    assert [e.id for e in report.exercises] == ["conv_output_size", "pad2d", "same_padding", "avgpool2d"]  # course order
    assert all(s == {"pad2d"} for s in overlaps if "pad2d" in s)  # alone
    assert any(len(s) == 2 for s in overlaps)  # the others two at a time


def test_parallel_grading_parses_python_one_thread_at_a_time(monkeypatch):
    """CPython 3.11's ast.parse is not safe in two threads at once (SystemError: AST constructor
    recursion depth mismatch): graded in parallel, every parse goes through one lock."""
    import ast
    from grader import grade as grade_module

    inside, most = [0], [0]
    real = ast.parse

    def slow_parse(*a, **k):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        inside[0] -= 1
        return real(*a, **k)

    monkeypatch.setattr(ast, "parse", slow_parse)
    grade_module._serialize_ast_parse()
    threads = [threading.Thread(target=ast.parse, args=("x = 1",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_a_sandbox_that_cannot_fork_costs_nothing(tmp_path, course, monkeypatch):
    """Should the submission's sandbox fail to fork a worker (whatever happened to it), it is replaced
    and the exercise graded in the new one, instead of stopping the grading."""
    from grader.sandbox.isolation import WorkerError
    from grader.sandbox.sandbox import Sandbox

    real_fork = Sandbox.fork
    broken: list[Sandbox] = []

    def fork(self, *a, **k):
        if not broken or broken[0] is self:  # the first sandbox asked is broken for good
            broken[:1] = [self]
            raise WorkerError("the sandbox is gone")
        return real_fork(self, *a, **k)

    monkeypatch.setattr(Sandbox, "fork", fork)
    report = grade(reference_submission(tmp_path / "sub"), course, only=["conv_output_size", "pad2d"])
    assert all(e.status == "passed" and e.score == e.max_score for e in report.exercises), report.exercises
