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

from grader.sandbox import landlock, seccomp

SANDBOX_DIR = Path(__file__).resolve().parents[1] / "grader" / "sandbox"


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


def test_program_is_well_formed():
    prog = seccomp.build_program(own_pid=1234)
    code = seccomp.assemble(prog)
    assert len(code) == 8 * len(prog) < 8 * 4096
    first = struct.unpack("<HBBI", code[:8])
    assert first == (0x20, 0, 0, 4)  # load the architecture first
    assert prog[-1] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    with_processes = seccomp.build_program(own_pid=1, block_processes=False)
    assert len(with_processes) < len(prog)


@pytest.mark.skipif(not seccomp.supported(), reason="seccomp filter is built for x86_64 only")
def test_filter_denies_what_numerics_never_need():
    import subprocess

    def child():
        seccomp.install(own_pid=os.getpid())
        import numpy as np

        box = {}
        t = threading.Thread(target=lambda: box.setdefault("thread", "ok"))
        t.start()
        t.join()
        res = __import__("resource")
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
            "unshare": attempt(lambda: os.unshare(os.CLONE_NEWUSER)) if hasattr(os, "unshare") else "EPERM",
        }

    out = in_child(child)
    assert "child_error" not in out, out
    assert out["thread"] == "ok" and out["numpy"] == 2.0
    assert out["socket"] == out["unix_socket"] == "EPERM" and out["socketpair"] == "ok"
    assert out["fork"] == out["exec"] == out["kill_parent"] == out["kill_group"] == "EPERM"
    assert out["kill_self"] == "ok" and out["read_limit"] == "ok"
    assert out["raise_limit"] != "ok" and out["unshare"] == "EPERM"


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


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against grader.sandbox
                parent = ["grader", "sandbox"][: max(0, 2 - (node.level - 1))]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def _forbidden_imports(path: Path) -> set[str]:
    return {n for n in _imports(path) if n.split(".")[0] == "solutions" or n.startswith("grader.suites")}


def test_nothing_in_the_sandbox_package_imports_hidden_suites_or_solutions(tmp_path):
    files = sorted(SANDBOX_DIR.glob("*.py"))
    assert len(files) >= 6
    for f in files:
        assert not _forbidden_imports(f), f"{f.name} imports {_forbidden_imports(f)}"
    # the scanner itself sees the ways such an import can be written
    probe = tmp_path / "probe.py"
    for line in ("from ..suites import conv", "import grader.suites.conv", "from solutions.conv import conv2d",
                 "from grader import suites", "import solutions"):
        probe.write_text(line + "\n")
        assert _forbidden_imports(probe), line


def test_worker_runtime_holds_only_worker_modules():
    from grader.sandbox.workspace import RUNTIME_FILES

    for name in RUNTIME_FILES:
        imports = _imports(SANDBOX_DIR / name)
        assert not any(n.startswith(("grader.sandbox.launcher", "grader.sandbox.bwrap", "grader.sandbox.view",
                                     "grader.sandbox.workspace", "grader.suites", "solutions")) for n in imports), name
