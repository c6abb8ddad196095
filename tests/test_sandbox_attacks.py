"""Hostile student code against the sandbox: every defence of grader/sandbox proved by an attack.

Each test writes a tiny student package into a temporary directory, runs it through a real
:class:`Worker` (in every isolation mode this machine offers: bubblewrap, Landlock) and asserts the
status the grader reports, that the grader process is unharmed and, where relevant, that no process
of the worker survives.

``SANDBOX_WEAKEN=nokill,nolimits,noseccomp,nofs,noguard,nocap`` (or ``all``) runs the same tests
against a deliberately weakened launcher (monkeypatched below, nothing in the product reads it):
the tests for the disabled defence must then fail.
"""
from __future__ import annotations

import getpass
import hashlib
import os
import signal
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from grader.sandbox import bwrap as bw
from grader.sandbox import launcher, seccomp_filter
from grader.sandbox_runtime import landlock, wire
from grader.sandbox.launcher import Sandbox, SandboxLimits, Worker

REPO = Path(__file__).resolve().parents[1]
NUMPY_LIMITS = dict(time_limit_s=20, memory_limit_mb=1024,
                    forbidden_imports=("torch", "tensorflow", "keras", "jax", "scipy.signal", "scipy.ndimage"),
                    forbidden_calls=("numpy.convolve", "numpy.correlate"))
WEAKEN = {w.strip() for w in os.environ.get("SANDBOX_WEAKEN", "").split(",") if w.strip()}
if "all" in WEAKEN:
    WEAKEN = {"nokill", "nolimits", "noseccomp", "nofs", "noguard", "nocap"}


def _available_modes() -> list[str]:
    return [m for m in ("bwrap", "landlock", "uid") if launcher.isolation_available(m)]


MODES = _available_modes()


@pytest.fixture(params=[*MODES, *(f"{m}+shared" for m in MODES)] or ["(none available)"])
def mode(request, monkeypatch) -> str:
    """Each isolation mode twice: a worker in a private sandbox, and a worker forked from a sandbox that
    outlives it (as in grading, one sandbox per submission). After a ``+shared`` test, the same sandbox
    must still fork a working, confined worker: no attack may cost the submission's next exercise."""
    if not MODES:
        pytest.skip("no sandbox available on this machine")
    base, _, shared = request.param.partition("+")
    if not shared:
        yield base
        return
    sandboxes: list[Sandbox] = []
    original = Worker.__init__

    def forked_from_a_sandbox(self, student_dir, package="exercises", limits=None, *, mode=None,
                              sandbox=None):
        if sandbox is None:
            sandbox = Sandbox(student_dir, package, limits, mode=mode)
            sandbox.start()
            sandboxes.append(sandbox)
        original(self, student_dir, package, limits, mode=mode, sandbox=sandbox)

    monkeypatch.setattr(Worker, "__init__", forked_from_a_sandbox)
    yield base
    monkeypatch.setattr(Worker, "__init__", original)
    for sb in sandboxes:
        try:
            if "nokill" not in WEAKEN:
                with Worker(sb.student_dir, sb.package, sb.limits, sandbox=sb) as fresh:
                    assert fresh.isolation == launcher.isolation_available(base), fresh.applied
                    r = fresh.import_module("no_such_module")
                    assert r.status == "error" and r.error.type == "ModuleNotFoundError", r
        finally:
            sb.close()
        assert processes_with(sb.token) == []


@pytest.fixture(autouse=True)
def _weakened(monkeypatch):
    """Apply SANDBOX_WEAKEN (a check of the tests themselves, off by default)."""
    if "nokill" in WEAKEN:
        monkeypatch.setattr(Worker, "_kill", lambda self: None)
        monkeypatch.setattr(Sandbox, "close", lambda self: None)
    if WEAKEN & {"nolimits", "noseccomp", "nofs", "noguard"}:
        original = Worker._config

        def weak_config(self, *a, **k):
            cfg = original(self, *a, **k)
            if "nolimits" in WEAKEN:
                cfg["rlimits"] = {}
            if "noseccomp" in WEAKEN:
                cfg["seccomp"] = False
            if "nofs" in WEAKEN:
                cfg["landlock"] = None
            if "noguard" in WEAKEN:
                cfg["forbidden_imports"], cfg["forbidden_calls"], cfg["forbidden_paths"] = [], [], []
            return cfg

        monkeypatch.setattr(Worker, "_config", weak_config)
    if "nofs" in WEAKEN:
        original_argv = bw.argv

        def weak_argv(**kw):  # a careless view: the project read-only, the host's temporary files writable
            a = original_argv(**kw)
            j = a.index("--chdir")
            extra = ["--ro-bind", "/work", "/work", "--bind", str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"),
                     str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}")]
            return a[:j] + extra + a[j:]

        monkeypatch.setattr(bw, "argv", weak_argv)
    if "nocap" in WEAKEN:
        monkeypatch.setattr(wire.FrameCaps, "__init__", _uncapped_limits_init)


def _uncapped_limits_init(self, *a, **k):
    object.__setattr__(self, "max_header_bytes", 2**62)
    object.__setattr__(self, "max_body_bytes", 2**62)
    for name, v in (("max_depth", 32), ("max_items", 10**6), ("max_ndim", 32), ("max_str_chars", 2**22)):
        object.__setattr__(self, name, v)


def student(tmp_path: Path, source: str, module: str = "hostile") -> Path:
    root = tmp_path / "submission"
    pkg = root / "exercises"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker`` (zombies have none and are not counted)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(d))
            except OSError:
                pass
    return found


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def run(tmp_path, mode, source, *calls, limits=None, **kw):
    """Start a worker on ``source``; ``calls`` are (function, args) pairs; returns (results, worker)."""
    sub = student(tmp_path, source)
    lim = limits or SandboxLimits(**{**NUMPY_LIMITS, **kw})
    results = []
    with Worker(sub, limits=lim, mode=mode) as w:
        for fn, args in calls:
            results.append(w.call("hostile", fn, args))
    return results, w


# ------------------------------------------------------------------------------------------- runaway code


def test_infinite_loop_ignoring_sigterm_times_out_and_leaves_nothing(tmp_path, mode):
    src = """
    import signal
    def spin():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            pass
    def fine():
        return 1
    """
    sub = student(tmp_path, src)
    with Worker(sub, limits=SandboxLimits(**{**NUMPY_LIMITS, "time_limit_s": 1.0}), mode=mode) as w:
        t0 = time.monotonic()
        r = w.call("hostile", "spin")
        assert r.status == "timeout" and r.error.type == "Timeout"
        assert processes_with(w.token) == []
        again = w.call("hostile", "fine")
        assert again.status == "timeout" and time.monotonic() - t0 < 10
        assert w.remaining_s == 0
    assert processes_with(w.token) == []


def test_budget_is_for_the_whole_exercise(tmp_path, mode):
    src = """
    import time
    def nap(s):
        time.sleep(s)
        return s
    """
    sub = student(tmp_path, src)
    with Worker(sub, limits=SandboxLimits(**{**NUMPY_LIMITS, "time_limit_s": 1.2}), mode=mode) as w:
        assert w.call("hostile", "nap", [0.45]).ok
        assert w.remaining_s < 0.75
        assert w.call("hostile", "nap", [0.45]).ok
        assert w.call("hostile", "nap", [0.45]).status == "timeout"


def test_fork_bomb_is_contained(tmp_path, mode):
    # bounded on purpose: under SANDBOX_WEAKEN the forks succeed, and this machine is shared
    src = """
    import os, time
    def bomb():
        n = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(120)
                    os._exit(0)
                n += 1
            except OSError:
                pass
        return n
    """
    (r,), w = run(tmp_path, mode, src, ("bomb", []), time_limit_s=5)
    try:
        assert r.ok and r.value == 0, "fork() succeeded inside the sandbox"
        assert processes_with(w.token) == []
    finally:
        _kill_all(w.token)


def _kill_all(marker: str) -> None:
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_double_forked_daemon_cannot_start(tmp_path, mode):
    src = """
    import os, subprocess, sys
    def daemon(marker):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker], start_new_session=True)
        return "started"
    """
    marker = f"daemon-{os.getpid()}-{time.time_ns()}"
    try:
        (r,), _ = run(tmp_path, mode, src, ("daemon", [marker]))
        assert r.status == "error" and r.error.type == "PermissionError"
        assert processes_with(marker) == []
    finally:
        _kill_all(marker)


@pytest.mark.skipif("bwrap" not in MODES, reason="subprocesses are only ever allowed under bubblewrap")
def test_daemon_dies_with_the_pid_namespace(tmp_path):
    src = """
    import os, sys
    def daemon(marker):
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time\\nwhile True: time.sleep(1)", marker])
            os._exit(0)
        os.waitpid(pid, 0)
        return "started"
    """
    marker = f"daemon-{os.getpid()}-{time.time_ns()}"
    lim = SandboxLimits(**NUMPY_LIMITS, allow_subprocesses=True)
    try:
        (r,), _ = run(tmp_path, "bwrap", src, ("daemon", [marker]), limits=lim)
        assert r.ok, r
        assert processes_with(marker) == []
    finally:
        _kill_all(marker)


def test_huge_allocation_is_a_memory_error_and_the_worker_lives_on(tmp_path, mode):
    src = """
    import numpy as np
    def hog():
        return len(bytearray(12 * 2**30))
    def hog_numpy():
        return np.empty(12 * 2**30, dtype=np.uint8).shape[0]  # untouched pages: harmless if not limited
    def fine():
        return 7
    """
    (a, b, c), _ = run(tmp_path, mode, src, ("hog", []), ("hog_numpy", []), ("fine", []))
    assert a.status == "memory" and a.error.type == "MemoryError"
    assert b.status == "memory"
    assert c.ok and c.value == 7


def test_segfault_is_a_crash_and_later_calls_are_cheap(tmp_path, mode):
    src = """
    import ctypes
    def segv():
        return ctypes.string_at(8, 16)
    def fine():
        return 1
    """
    sub = student(tmp_path, src)
    with Worker(sub, limits=SandboxLimits(**NUMPY_LIMITS), mode=mode) as w:
        r = w.call("hostile", "segv")
        assert r.status == "crashed" and "SIGSEGV" in r.error.message
        t0 = time.monotonic()
        again = w.call("hostile", "fine")
        assert again.status == "crashed" and time.monotonic() - t0 < 0.5
    assert processes_with(w.token) == []


def test_exit_mid_call_is_never_ok(tmp_path, mode):
    src = """
    import os, sys
    def quit_(code):
        sys.exit(code)
    def hard_exit():
        os._exit(0)
    def fine():
        return 2
    """
    (a, b, c, d), _ = run(tmp_path, mode, src, ("quit_", [0]), ("fine", []), ("hard_exit", []), ("fine", []))
    assert a.status == "error" and a.error.type == "SystemExit"
    assert b.ok and b.value == 2
    assert c.status == "crashed" and d.status == "crashed"


# ------------------------------------------------------------------------------------------- filesystem


def world_readable(mode: str) -> bool:
    """The uid mode without Landlock: the worker reads what any user of the machine may read (minus the
    grader's secrets, locked, and the packages its view hides, denied by ACL). The hunt below then looks
    for the MNIST files themselves (``t10k``, ``idx1``): names holding "mnist" are common in a system's
    own world-readable files (dataset packages in apt's cache), and folder names (``/work``, ``/home``)
    are listed as to any user."""
    return mode == "uid" and landlock.abi_version() < 1


def test_reference_project_home_and_test_labels_are_out_of_reach(tmp_path, mode):
    reference = REPO / "solutions" / "conv.py"
    assert reference.exists()
    src = """
    import os
    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read(64).decode("latin-1")
        except OSError as e:
            return type(e).__name__
    def listing(path):
        try:
            return sorted(os.listdir(path))
        except OSError as e:
            return type(e).__name__
    def hunt(skip, marks):
        found = []
        for top in ("/", ):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
                found += [os.path.join(dirpath, f) for f in filenames if any(m in f.lower() for m in marks)]
        return found
    def env():
        return {k: v for k, v in os.environ.items()}
    def via_links(path):
        out = []
        for make in (os.symlink, os.link):
            name = f"{make.__name__}-{len(out)}"
            try:
                make(path, name)
                with open(name, "rb") as f:
                    out.append(f.read(64).decode("latin-1"))
            except OSError as e:
                out.append(type(e).__name__)
        return out
    """
    calls = [("read", [str(reference)]), ("read", [str(REPO / "course.yml")]), ("listing", ["/work"]),
             ("listing", [str(REPO)]), ("listing", ["/root"]), ("read", ["/work/shared/data/mnist/t10k-labels-idx1-ubyte.gz"]),
             ("hunt", [["/proc", "/sys", "/dev", "/usr"], ["t10k", "idx1"] + ([] if world_readable(mode) else ["mnist"])]),
             ("env", []), ("listing", ["/home"]),
             ("via_links", [str(reference)])]
    (ref, yml, work, repo, root, labels, hunt, env, home, links), _ = run(tmp_path, mode, src, *calls)
    assert links.ok and all(v.endswith("Error") for v in links.value), links.value
    assert ref.value in ("FileNotFoundError", "PermissionError")
    assert yml.value in ("FileNotFoundError", "PermissionError")
    # without Landlock the uid mode shows what any user sees: /work's names, but not the repository inside
    assert work.value in ("FileNotFoundError", "PermissionError") or (world_readable(mode) and type(work.value) is list)
    assert repo.value in ("FileNotFoundError", "PermissionError")
    assert root.value in ("FileNotFoundError", "PermissionError", [".pyenv"])
    assert labels.value in ("FileNotFoundError", "PermissionError")
    assert hunt.ok and hunt.value == []
    assert env.ok and not any("MNIST" in k or "/work" in v for k, v in env.value.items())
    assert home.value in ("FileNotFoundError", "PermissionError", []) or (world_readable(mode) and type(home.value) is list)


def test_writes_outside_scratch_fail_and_the_submission_is_unchanged(tmp_path, mode):
    src = """
    import os
    def write(path):
        try:
            with open(path, "a") as f:
                f.write("pwned")
            return "written"
        except OSError as e:
            return type(e).__name__
    def write_scratch():
        with open("scratch.txt", "w") as f:
            f.write("fine")
        with open(os.path.join(os.environ["TMPDIR"], "t.txt"), "w") as f:
            f.write("fine")
        return open("scratch.txt").read()
    def own_file():
        return write(__file__)
    """
    sub = student(tmp_path, src)
    decoy = tmp_path / "grader-file.txt"
    decoy.write_text("grader data")
    before = tree_digest(sub)
    host_marker = REPO / f"pwned-{os.getpid()}-{time.time_ns()}.txt"
    try:
        with Worker(sub, limits=SandboxLimits(**NUMPY_LIMITS), mode=mode) as w:
            results = [w.call("hostile", "own_file"),
                       w.call("hostile", "write", [str(sub / "exercises" / "hostile.py")]),
                       w.call("hostile", "write", [str(decoy)]),
                       w.call("hostile", "write", [str(host_marker)])]
            scratch = w.call("hostile", "write_scratch")
        assert all(r.ok and r.value != "written" for r in results), results
        assert scratch.ok and scratch.value == "fine"
        assert tree_digest(sub) == before
        assert decoy.read_text() == "grader data"
        assert not host_marker.exists()
    finally:
        host_marker.unlink(missing_ok=True)


def test_no_network_not_even_loopback(tmp_path, mode):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    src = """
    import socket
    def connect(port):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"stolen")
            return "connected"
        except OSError as e:
            return type(e).__name__
    """
    try:
        (r,), _ = run(tmp_path, mode, src, ("connect", [port]))
        assert r.ok and r.value != "connected"
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_cannot_signal_the_grader(tmp_path, mode):
    src = """
    import os, signal
    def kill(pid):
        try:
            os.kill(pid, signal.SIGTERM)
            return "sent"
        except OSError as e:
            return type(e).__name__
    """
    previous = signal.signal(signal.SIGTERM, lambda *a: pytest.fail("the student signalled the grader"))
    try:
        (r,), _ = run(tmp_path, mode, src, ("kill", [os.getpid()]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert r.ok and r.value != "sent"


@pytest.mark.skipif(not seccomp_filter.supported(), reason="libseccomp not available")
def test_syscall_filter_denies_debugging_mounts_namespaces_and_signals_but_not_threads(tmp_path, mode):
    import pyseccomp

    names = ("ptrace", "mount", "unshare", "kill", "socket", "clone3")
    numbers = {n: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) for n in names}  # numbers of this arch
    src = """
    import ctypes, errno, os, threading
    def probe(numbers):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def call(name, *args):
            rc = libc.syscall(ctypes.c_long(numbers[name]), *(ctypes.c_long(a) for a in args))
            return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
        ran = []
        t = threading.Thread(target=lambda: ran.append("ran"))
        t.start()
        t.join()
        return {"thread": ran, "ptrace": call("ptrace", 3, os.getppid(), 0, 0),  # PEEKUSER: ESRCH unfiltered
                "mount": call("mount", 0, 0, 0, 0, 0), "unshare": call("unshare", 0x10000000),  # CLONE_NEWUSER
                "kill_other": call("kill", os.getppid(), 0), "socket": call("socket", 2, 1, 0),  # AF_INET, STREAM
                "clone3": call("clone3", 0, 0), "kill_self": call("kill", os.getpid(), 0)}
    """
    (r,), _ = run(tmp_path, mode, src, ("probe", [numbers]))
    assert r.ok, r
    assert r.value == {"thread": ["ran"], "ptrace": "EPERM", "mount": "EPERM", "unshare": "EPERM",
                       "kill_other": "EPERM", "socket": "EPERM", "clone3": "ENOSYS", "kill_self": "ok"}


@pytest.mark.skipif("bwrap" not in MODES, reason="bubblewrap not available")
def test_bubblewrap_runs_the_student_as_nobody(tmp_path):
    src = """
    import os
    def ids():
        return [os.getuid(), os.geteuid(), os.getgid(), os.getpid()]
    """
    (r,), w = run(tmp_path, "bwrap", src, ("ids", []))
    assert r.value[:3] == [65534, 65534, 65534] and r.value[3] < 10  # own PID namespace
    assert w.isolation.startswith("bubblewrap")


# ------------------------------------------------------------------------------------------- forbidden imports and calls


@pytest.mark.parametrize("trick", [
    "import torch",
    "__import__('tor' + 'ch')",
    "importlib.import_module('tor' + 'ch')",
    "importlib.import_module('scipy.sig' + 'nal')",
    "sys.meta_path.clear(); __import__('torch')",
    "sys.meta_path.pop(0); importlib.import_module('torch')",
    "importlib.util.find_spec('torch')",
])
def test_forbidden_imports_are_flagged_even_when_caught(tmp_path, mode, trick):
    src = f"""
    import importlib, importlib.util, sys
    def sneak():
        try:
            {trick}
        except BaseException:
            pass
        return "looks innocent"
    """
    (r,), w = run(tmp_path, mode, src, ("sneak", []))
    assert r.status == "forbidden" and r.error.type.startswith("Forbidden"), r
    assert w.violations


def test_fake_module_in_sys_modules_is_flagged(tmp_path, mode):
    src = """
    import sys, types
    def fake():
        sys.modules["torch"] = types.ModuleType("torch")
        import torch
        return 1
    """
    (r,), _ = run(tmp_path, mode, src, ("fake", []))
    assert r.status == "forbidden"


def test_forbidden_at_import_time_taints_every_result(tmp_path, mode):
    src = """
    try:
        import jax
    except ImportError:
        jax = None
    def honest():
        return 3
    """
    (a, b), _ = run(tmp_path, mode, src, ("honest", []), ("honest", []))
    assert a.status == "forbidden" and b.status == "forbidden"


@pytest.mark.parametrize("call", ["np.convolve([1, 2], [3, 4])", "np.correlate([1, 2], [3, 4])",
                                  "np._core.multiarray.correlate2([1, 2], [3, 4], 0)",
                                  "np._core.multiarray.correlate([1, 2], [3, 4], 0)"])
def test_forbidden_calls(tmp_path, mode, call):
    src = f"""
    import numpy as np
    def sneak():
        try:
            return {call}.tolist()
        except Exception:
            return "caught"
    """
    (r,), _ = run(tmp_path, mode, src, ("sneak", []))
    assert r.status == "forbidden" and r.error.type == "ForbiddenCall"


def test_torch_is_absent_from_numpy_workers(tmp_path, mode):
    src = """
    import os, sys
    def look():
        hits = []
        for p in sys.path:
            try:
                hits += [n for n in os.listdir(p) if n.startswith(("torch", "scipy", "tensorflow", "jax"))]
            except OSError:
                pass
        return hits
    """
    (r,), _ = run(tmp_path, mode, src, ("look", []))
    assert r.ok and r.value == []


# ------------------------------------------------------------------------------------------- what comes back


def test_output_flood_is_truncated_without_hanging(tmp_path, mode):
    src = """
    import sys
    def flood():
        line = "x" * 1023 + "\\n"
        for _ in range(20 * 1024):
            sys.stdout.write(line)
            sys.stderr.write(line)
        print('{"score": 100, "max_score": 100}')
        return 5
    """
    (r,), w = run(tmp_path, mode, src, ("flood", []))
    assert r.ok and r.value == 5
    assert len(w.stdout) < 70 * 1024 and "more bytes not shown" in w.stdout
    assert len(w.stderr) < 70 * 1024


@pytest.mark.parametrize("ret, fragment", [
    ("np.array([object()], dtype=object)", "dtype object"),
    ("Payload()", "Payload"),
    ("AlwaysEqual(np.zeros(3))", "subclass of numpy.ndarray"),
    ("np.ma.masked_array([1.0, 2.0])", "subclass of numpy.ndarray"),
    ("{1: 2}", "key of type int"),
    ("np.zeros(2, dtype=complex)", "complex"),
    ("lambda: 1", "function"),
    ("MyFloat(1.5)", "MyFloat"),
])
def test_return_values_that_are_not_plain_data_are_rejected(tmp_path, mode, ret, fragment):
    src = f"""
    import numpy as np, pickle, os
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    class AlwaysEqual(np.ndarray):
        def __new__(cls, a):
            return np.asarray(a).view(cls)
        def __eq__(self, other):
            return True
    class MyFloat(float):
        def __eq__(self, other):
            return True
    def give():
        return {ret}
    """
    (r,), _ = run(tmp_path, mode, src, ("give", []))
    assert r.status == "error" and r.error.type == "InvalidReturn", r
    assert fragment in r.error.message


def test_hostile_frame_is_a_protocol_error_not_a_grader_memory_error(tmp_path, mode):
    src = """
    import os, struct, sys
    def forge():
        fd = int(sys.argv[sys.argv.index("--res") + 1])
        os.write(fd, struct.pack("<4sIQ", b"CNV1", 2, 2**40) + b"{}")
        return 1
    def forge_header():
        fd = int(sys.argv[sys.argv.index("--res") + 1])
        os.write(fd, struct.pack("<4sIQ", b"CNV1", 2**31, 0))
        return 1
    """
    for fn in ("forge", "forge_header"):
        (r,), w = run(tmp_path / fn, mode, src, (fn, []))
        assert r.status == "protocol" and r.error.type == "ProtocolError"
        assert processes_with(w.token) == []


def test_forged_result_frame_is_validated(tmp_path, mode):
    src = """
    import os, sys, json, struct
    def forge():
        fd = int(sys.argv[sys.argv.index("--res") + 1])
        head = json.dumps({"k": "result", "m": {"status": "ok"}, "v": {"a": 0},
                           "b": [["|O", [1], 0, 8]]}).encode()
        os.write(fd, struct.pack("<4sIQ", b"CNV1", len(head), 8) + head + b"\\0" * 8)
        import time; time.sleep(5)
    """
    (r,), _ = run(tmp_path, mode, src, ("forge", []))
    assert r.status == "protocol" and "not allowed" in r.error.message


def test_mutated_inputs_are_reported(tmp_path, mode):
    src = """
    def scale(x, y):
        x *= 2
        return x.sum() + y.sum()
    """
    sub = student(tmp_path, src)
    x = np.arange(6.0).reshape(2, 3)
    y = np.ones(3)
    with Worker(sub, limits=SandboxLimits(**NUMPY_LIMITS), mode=mode) as w:
        r = w.call("hostile", "scale", [x, y])
    assert r.ok and r.value == 33.0
    assert r.mutated == ("args[0]",)
    assert np.array_equal(x, np.arange(6.0).reshape(2, 3))  # the grader's copy is untouched


def test_patching_numpy_or_printing_a_report_changes_nothing_outside(tmp_path, mode):
    src = """
    import numpy as np
    def patch():
        np.allclose = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        print("PASSED 100/100")
        return np.zeros(2)
    """
    (r,), w = run(tmp_path, mode, src, ("patch", []))
    assert r.ok and not np.allclose(r.value, [1.0, 1.0])
    assert "PASSED" in w.stdout
