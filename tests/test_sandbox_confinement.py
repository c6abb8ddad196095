"""The confinement primitives on their own: the seccomp program, Landlock, and the trust boundary in code.

Seccomp and Landlock are applied in forked children (they cannot be undone), which report back
through a pipe.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from grader.sandbox import seccomp_filter
from grader.sandbox_runtime import landlock, seccomp

GRADER_DIR = Path(__file__).resolve().parents[1] / "grader"
SANDBOX_DIR = GRADER_DIR / "sandbox"  # trusted: runs in the grader
RUNTIME_DIR = GRADER_DIR / "sandbox_runtime"  # copied whole beside student code


def in_child(fn) -> dict:
    """Run ``fn()`` in a forked child; return the JSON-able dict it produced."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as e:  # noqa: BLE001
            out = {"child_error": f"{type(e).__name__}: {e}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def attempt(f) -> str:
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    except ValueError as e:  # resource.setrlimit reports EPERM as ValueError
        return f"ValueError: {e}"


@pytest.mark.skipif(not seccomp_filter.supported(), reason="libseccomp not available")
def test_program_is_built_by_libseccomp_for_this_architecture():
    import pyseccomp

    code = seccomp_filter.build(block_processes=True)
    assert len(code) % 8 == 0 and 0 < len(code) < 8 * 4096
    prog = [struct.unpack_from("<HBBI", code, i) for i in range(0, len(code), 8)]
    assert prog[0] == (0x20, 0, 0, 4)  # load the architecture first...
    assert prog[1][0] == 0x15 and prog[1][3] == pyseccomp.system_arch()  # ...and compare it with ours
    assert (0x06, 0, 0, 0x80000000) in prog  # another ABI kills the process
    assert sum(k == seccomp.PID_PLACEHOLDER for _, _, _, k in prog) >= 1  # signals: placeholder for the pid
    assert len(seccomp_filter.build(block_processes=False)) < len(code)
    cfg = seccomp_filter.for_worker(block_processes=True)
    assert bytes.fromhex(cfg["program"]) == code and cfg["syscall"] > 0


@pytest.mark.skipif(not seccomp_filter.supported(), reason="libseccomp not available")
def test_install_points_the_signal_rules_at_the_given_pid():
    code = seccomp_filter.build(block_processes=True)
    patched = seccomp.with_pid(code, 4321)
    assert len(patched) == len(code) and patched != code
    ks = [struct.unpack_from("<HBBI", patched, i)[3] for i in range(0, len(patched), 8)]
    assert seccomp.PID_PLACEHOLDER not in ks and 4321 in ks
    for bad in (b"", b"x" * 7, b"\0" * 8 * 4097):
        with pytest.raises(ValueError):
            seccomp.with_pid(bad, 1)


def test_without_libseccomp_there_is_no_filter_and_a_clear_reason(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails as if the library were missing
    assert not seccomp_filter.supported()
    assert "libseccomp is not available" in seccomp_filter.problem()


def _install(block_processes: bool = True) -> None:
    cfg = seccomp_filter.for_worker(block_processes)
    seccomp.install(bytes.fromhex(cfg["program"]), own_pid=os.getpid(), syscall_nr=cfg["syscall"])


def _libc_syscall(name: str, *args: int) -> str:
    """Call a raw system call by name (libseccomp resolves the number); errno name or "ok"."""
    import ctypes

    import pyseccomp

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
    rc = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


@pytest.mark.skipif(not seccomp_filter.supported(), reason="libseccomp not available")
def test_filter_denies_what_numerics_never_need():
    import fcntl
    import subprocess
    import termios

    def child():
        _install()
        import numpy as np

        box = {}
        t = threading.Thread(target=lambda: box.setdefault("thread", "ok"))
        t.start()
        t.join()
        res = __import__("resource")
        tty = os.open("/dev/null", os.O_RDONLY)
        return {
            "thread": box.get("thread"),
            "numpy": float(np.linalg.norm(np.ones(4))),
            "socket": attempt(lambda: socket.socket(socket.AF_INET)),
            "unix_socket": attempt(lambda: socket.socket(socket.AF_UNIX)),
            "socketpair": attempt(lambda: [s.close() for s in socket.socketpair()]),
            "fork": attempt(os.fork),
            "exec": attempt(lambda: subprocess.run(["/bin/true"])),
            "kill_parent": attempt(lambda: os.kill(os.getppid(), 0)),
            "kill_group": attempt(lambda: os.kill(0, 0)),
            "kill_self": attempt(lambda: os.kill(os.getpid(), 0)),
            "raise_limit": attempt(lambda: res.setrlimit(res.RLIMIT_NOFILE, res.getrlimit(res.RLIMIT_NOFILE))),
            "read_limit": attempt(lambda: res.getrlimit(res.RLIMIT_NOFILE)),
            "unshare": _libc_syscall("unshare", 0x10000000),  # CLONE_NEWUSER (os.unshare is 3.12+)
            "ptrace": _libc_syscall("ptrace", 3, os.getppid(), 0, 0),  # PEEKUSER: ESRCH if unfiltered
            "mount": _libc_syscall("mount", 0, 0, 0, 0, 0),
            "clone3": _libc_syscall("clone3", 0, 0),
            "clone_newns": _libc_syscall("clone", 0x00020000 | 17, 0, 0, 0, 0),  # CLONE_NEWNS | SIGCHLD
            "tiocsti": attempt(lambda: fcntl.ioctl(tty, termios.TIOCSTI, b"x")),
            "tiocsti_high_bits": _libc_syscall("ioctl", tty, (1 << 32) | termios.TIOCSTI, 0),
        }

    out = in_child(child)
    assert "child_error" not in out, out
    assert out["thread"] == "ok" and out["numpy"] == 2.0
    assert out["socket"] == out["unix_socket"] == "EPERM" and out["socketpair"] == "ok"
    assert out["fork"] == out["exec"] == out["kill_parent"] == out["kill_group"] == "EPERM"
    assert out["kill_self"] == "ok" and out["read_limit"] == "ok"
    assert out["raise_limit"] != "ok" and out["unshare"] == "EPERM"
    assert out["ptrace"] == out["mount"] == out["clone_newns"] == "EPERM" and out["clone3"] == "ENOSYS"
    assert out["tiocsti"] == out["tiocsti_high_bits"] == "EPERM"


@pytest.mark.skipif(not seccomp_filter.supported(), reason="libseccomp not available")
def test_filter_without_process_blocking_allows_fork_but_still_no_namespaces():
    def child():
        _install(block_processes=False)

        def fork_and_wait():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)

        return {"fork": attempt(fork_and_wait), "unshare": _libc_syscall("unshare", 0x10000000),
                "kill_parent": attempt(lambda: os.kill(os.getppid(), 0))}

    assert in_child(child) == {"fork": "ok", "unshare": "EPERM", "kill_parent": "EPERM"}


@pytest.mark.skipif(landlock.abi_version() < 1, reason="Landlock not available")
def test_landlock_confines_reads_writes_and_signals(tmp_path):
    readable = tmp_path / "ok"
    readable.mkdir()
    (readable / "a.txt").write_text("hello")
    secret = tmp_path / "secret.txt"
    secret.write_text("expected outputs")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def child():
        landlock.restrict(read=[str(readable)], list_only=[str(tmp_path)], write=[str(scratch)])
        return {
            "read_ok": open(readable / "a.txt").read(),
            "secret": attempt(lambda: open(secret).read()),
            "list": sorted(os.listdir(tmp_path)),
            "root": attempt(lambda: os.listdir("/")),
            "write_ok": attempt(lambda: (scratch / "x").write_text("x")),
            "write_bad": attempt(lambda: (readable / "y").write_text("y")),
            "kill_parent": attempt(lambda: os.kill(os.getppid(), 0)) if landlock.abi_version() >= 6 else "EPERM",
        }

    out = in_child(child)
    assert "child_error" not in out, out
    assert out["read_ok"] == "hello" and out["secret"] == "EACCES" and out["root"] == "EACCES"
    assert out["list"] == ["ok", "scratch", "secret.txt"]
    assert out["write_ok"] == "ok" and out["write_bad"] == "EACCES"
    assert out["kill_parent"] == "EPERM"
    assert secret.read_text() == "expected outputs"


def _imports(path: Path, package: str = "grader.sandbox") -> set[str]:
    """Every module ``path`` imports, relative imports resolved against ``package``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: max(0, len(parts) - (node.level - 1))]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def _forbidden_imports(path: Path, package: str = "grader.sandbox") -> set[str]:
    return {n for n in _imports(path, package) if n.split(".")[0] == "solutions" or n.startswith("grader.suites")}


def _outside_runtime(path: Path) -> set[str]:
    """Imports of grader code outside :mod:`grader.sandbox_runtime` (or of the solutions)."""
    return {n for n in _imports(path, "grader.sandbox_runtime")
            if n.split(".")[0] in ("grader", "solutions") and not n.startswith("grader.sandbox_runtime")}


def test_nothing_in_the_sandbox_packages_imports_hidden_suites_or_solutions(tmp_path):
    files = sorted(SANDBOX_DIR.glob("*.py")) + sorted(RUNTIME_DIR.glob("*.py"))
    assert len(files) >= 11
    for f in files:
        package = f"grader.{f.parent.name}"
        assert not _forbidden_imports(f, package), f"{f.name} imports {_forbidden_imports(f, package)}"
    # the scanner itself sees the ways such an import can be written
    probe = tmp_path / "probe.py"
    for line in ("from ..suites import conv", "import grader.suites.conv", "from solutions.conv import conv2d",
                 "from grader import suites", "import solutions"):
        probe.write_text(line + "\n")
        assert _forbidden_imports(probe), line


def test_the_worker_runtime_folder_imports_nothing_from_the_trusted_side(tmp_path):
    files = sorted(RUNTIME_DIR.glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "worker", "wire", "guard", "seccomp", "landlock", "torch_ops"}
    for f in files:
        assert not _outside_runtime(f), f"{f.name} imports {_outside_runtime(f)}"
    assert not (RUNTIME_DIR / "__init__.py").read_text().count("import "), "the copied __init__ imports nothing"
    probe = tmp_path / "probe.py"
    for line in ("from ..sandbox import launcher", "from ..sandbox.bwrap import argv", "import grader.sandbox.view",
                 "from grader.sandbox import workspace", "from .. import grade", "from ..suites import conv",
                 "import solutions"):
        probe.write_text(line + "\n")
        assert _outside_runtime(probe), line
    probe.write_text("from . import wire\nfrom .guard import Guard\nimport numpy\n")
    assert not _outside_runtime(probe)


def test_the_trusted_side_uses_only_the_wire_format_and_kernel_probes_of_the_runtime():
    for f in sorted(SANDBOX_DIR.glob("*.py")):
        used = {n.split(".")[2] for n in _imports(f) if n.startswith("grader.sandbox_runtime.")}
        assert used <= {"wire", "landlock", "seccomp"}, f"{f.name} imports runtime modules {used}"


def test_the_whole_runtime_folder_and_nothing_else_is_copied_into_a_workspace(tmp_path):
    from grader.sandbox.workspace import RUNTIME_PACKAGE, create_worker_dir

    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "conv.py").write_text("x = 1\n")
    ws = create_worker_dir(tmp_path, "exercises")
    try:
        copied = ws.runtime / RUNTIME_PACKAGE
        assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in RUNTIME_DIR.glob("*.py"))
        for p in copied.iterdir():
            assert p.read_bytes() == (RUNTIME_DIR / p.name).read_bytes(), p.name
        assert sorted(p.name for p in ws.runtime.iterdir()) == [RUNTIME_PACKAGE]
    finally:
        ws.remove()


# ------------------------------------------------------------------ the filesystem view, as computed


def _flag_args(a: list[str], flag: str) -> list[str]:
    return [a[i + 1] for i, x in enumerate(a) if x == flag]


def test_bwrap_view_masks_every_site_dir_and_binds_no_forbidden_file():
    """Host-only (no sandbox needed): the command line hides each site dir of the mounted trees and
    binds back only allowed entries, leaving scipy/signal and scipy/ndimage out of scipy."""
    import site
    import sys

    import scipy

    from grader.sandbox import bwrap as bw
    from grader.sandbox.view import python_view

    forbidden = ("torch", "tensorflow", "keras", "jax", "scipy.signal", "scipy.ndimage")
    view = python_view(("numpy", "scipy"), forbidden)
    a = bw.argv(bwrap="bwrap", view=view, student="/s", runtime="/r", env={}, command=["python"], info_fd=3,
                scratch_bytes=1 << 20, tmp_bytes=1 << 20)
    tmpfs, binds = set(_flag_args(a, "--tmpfs")), _flag_args(a, "--ro-bind")
    site_dirs = {os.path.realpath(d) for d in site.getsitepackages()}
    for top in ("/usr", sys.base_prefix):
        for dirpath, dirnames, _ in os.walk(top):
            site_dirs |= {os.path.realpath(os.path.join(dirpath, d)) for d in dirnames if d.endswith("-packages")}
            dirnames[:] = [d for d in dirnames if not d.endswith("-packages")]
    assert site_dirs <= tmpfs, f"site dirs left visible: {sorted(site_dirs - tmpfs)}"
    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))
    assert scipy_dir in tmpfs  # rebuilt from its entries...
    assert os.path.join(scipy_dir, "fft") in binds
    for b in binds:  # ...without the forbidden subpackages, and nothing else from any site dir
        assert not b.startswith((os.path.join(scipy_dir, "signal"), os.path.join(scipy_dir, "ndimage"))), b
        for d in site_dirs:
            if b.startswith(d + "/"):
                top = os.path.relpath(b, d).split("/")[0]
                assert top.split(".")[0].split("-")[0] in ("numpy", "scipy"), b


def test_landlock_grants_leave_out_masked_trees_even_through_links(tmp_path):
    from grader.sandbox.policy import grant_except as _grant_except

    (tmp_path / "tree" / "lib" / "site-packages" / "torch").mkdir(parents=True)
    (tmp_path / "tree" / "lib" / "ok").mkdir()
    (tmp_path / "tree" / "bin").mkdir()
    (tmp_path / "tree" / "shortcut").symlink_to(tmp_path / "tree" / "lib")  # a link above the mask
    (tmp_path / "tree" / "direct").symlink_to(tmp_path / "tree" / "lib" / "site-packages")
    grants = _grant_except([str(tmp_path / "tree")], [str(tmp_path / "tree" / "lib" / "site-packages")])
    assert sorted(os.path.relpath(g, tmp_path / "tree") for g in grants) == ["bin", "lib/ok"]
