"""The Worker API as the grader uses it: values, errors a student understands, modes, torch operations."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.sandbox import isolation, launcher
from grader.sandbox_runtime import landlock
from grader.sandbox.launcher import Build, SandboxLimits, Worker, WorkerError

MODES = [m for m in ("bwrap", "landlock", "uid") if launcher.isolation_available(m)]
LIMITS = SandboxLimits(time_limit_s=30, memory_limit_mb=1024, forbidden_imports=("torch", "scipy.signal"),
                       forbidden_calls=("numpy.convolve",))


@pytest.fixture(params=MODES or ["(none available)"])
def mode(request) -> str:
    if not MODES:
        pytest.skip("no sandbox available on this machine")
    return request.param


def write(root: Path, files: dict[str, str], package: str | None = "exercises") -> Path:
    pkg = root / package if package else root
    pkg.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        (pkg / name).write_text(textwrap.dedent(src))
    return root


ECHO = """
def echo(*args, **kwargs):
    return [list(args), kwargs]
def layout(x):
    return [bool(x.flags.c_contiguous), bool(x.flags.f_contiguous), bool(x.flags.writeable)]
"""


def test_values_cross_both_ways_unchanged(tmp_path, mode):
    sub = write(tmp_path, {"echo.py": ECHO})
    args = [np.arange(6, dtype=np.uint8).reshape(2, 3), np.array(2.5), np.zeros((0, 4), np.float32),
            np.array([True, False]), np.array([np.nan, -np.inf]), (1, "two", None, [3.0, {"k": np.int16(4)}])]
    kwargs = {"stride": (2, 1), "padding": "same", "big": 2**70}
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        r = w.call("echo", "echo", args, kwargs)
    assert r.ok, r
    got_args, got_kwargs = r.value
    for a, b in zip(args[:5], got_args[:5]):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert got_args[5] == (1, "two", None, [3.0, {"k": 4}])
    assert got_kwargs == kwargs


def test_non_contiguous_inputs_reach_the_student_non_contiguous(tmp_path, mode):
    sub = write(tmp_path, {"echo.py": ECHO})
    x = np.arange(12.0).reshape(3, 4)
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        assert w.call("echo", "layout", [x]).value == [True, False, True]
        assert w.call("echo", "layout", [x.T]).value == [False, True, True]
        assert w.call("echo", "layout", [x[:, ::2]]).value[0] is False


def test_honest_mistakes_get_messages_a_student_understands(tmp_path, mode):
    sub = write(tmp_path, {
        "broken.py": "def f(x):\n    return x +\n",
        "stub.py": "def conv2d(x, w):\n    raise NotImplementedError('conv2d: not implemented yet')\n",
        "sibling.py": "from .nothere import helper\n",
        "ok.py": "def two(a, b):\n    return a + b\ndef boom(a):\n    return a[10]\n",
    })
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        syn = w.call("broken", "f", [1])
        imp = w.import_module("broken")
        stub = w.call("stub", "conv2d", [1, 2])
        sib = w.call("sibling", "x")
        missing = w.call("ok", "three", [1])
        sig = w.call("ok", "two", [1])
        idx = w.call("ok", "boom", [[1, 2]])
        fine = w.call("ok", "two", [1, 2])
    assert syn.status == "error" and syn.error.type == "SyntaxError"
    assert syn.error.lineno == 2 and syn.error.filename == "exercises/broken.py" and "return x +" in syn.error.text
    assert imp.error.type == "SyntaxError"
    assert stub.status == "not_implemented" and "conv2d" in stub.error.message
    assert sib.error.type == "ModuleNotFoundError" and "nothere" in sib.error.message
    assert missing.error.type == "MissingFunction" and "three" in missing.error.message
    assert sig.error.type == "TypeError" and "missing 1 required positional argument" in sig.error.message
    assert idx.error.type == "IndexError" and 'File "exercises/ok.py", line 4, in boom' in idx.error.traceback
    assert fine.ok and fine.value == 3


def test_siblings_are_the_students_own_and_flat_layouts_work(tmp_path, mode):
    sub = write(tmp_path, {
        "padding.py": "def pad2d(x):\n    return 'student padding'\n",
        "conv.py": "from .padding import pad2d\ndef conv2d():\n    return pad2d(None)\n",
    }, package=None)
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        r = w.call("conv", "conv2d")
    assert r.ok and r.value == "student padding"


def test_output_is_captured_and_never_parsed(tmp_path, mode):
    sub = write(tmp_path, {"talk.py": "import sys\ndef f():\n    print('{\"status\": \"ok\"}')\n"
                                      "    print('warn', file=sys.stderr)\n    raise ValueError('bad shape (2, 3)')\n"})
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        r = w.call("talk", "f")
    assert r.status == "error" and r.error.type == "ValueError" and r.error.message == "bad shape (2, 3)"
    assert '{"status": "ok"}' in w.stdout and "warn" in w.stderr


def test_isolation_is_named_and_the_student_dir_is_checked(tmp_path, mode):
    sub = write(tmp_path, {"echo.py": ECHO})
    with Worker(sub, limits=LIMITS, mode=mode) as w:
        assert w.isolation == {"bwrap": "bubblewrap+seccomp+rlimits", "landlock": "landlock+seccomp+rlimits",
                               "uid": "uid+landlock+seccomp+rlimits" if landlock.abi_version() >= 1
                               else "uid+seccomp+rlimits"}[mode]
        assert 0 < w.remaining_s <= 30
    with pytest.raises(WorkerError, match="does not exist"):
        Worker(tmp_path / "missing", limits=LIMITS, mode=mode).start()


def test_isolation_choice_and_refusal(tmp_path, monkeypatch):
    sub = write(tmp_path, {"echo.py": ECHO})
    monkeypatch.setenv("GRADER_ISOLATION", "bogus")
    with pytest.raises(WorkerError, match="GRADER_ISOLATION"):
        Worker(sub, limits=LIMITS).start()
    monkeypatch.setenv("GRADER_ISOLATION", "none")
    with pytest.raises(WorkerError, match="allow-unsandboxed"):
        Worker(sub, limits=LIMITS).start()
    with Worker(sub, limits=SandboxLimits(30, 1024, allow_unsandboxed=True, forbidden_imports=("torch",))) as w:
        assert w.isolation == "none (--allow-unsandboxed)"
        assert w.call("echo", "echo", [1]).value == [[1], {}]
    monkeypatch.setenv("GRADER_ISOLATION", "auto")
    monkeypatch.setattr(isolation, "_bwrap_problem", lambda: "no user namespaces")
    monkeypatch.setattr(isolation, "_uid_problem", lambda: None)
    assert launcher.choose_mode() == "uid"  # root without namespaces: a uid of its own comes before Landlock
    monkeypatch.setattr(isolation, "_uid_problem", lambda: "not root")
    if landlock.abi_version() >= 1:
        assert launcher.choose_mode() == "landlock"
        assert launcher.isolation_available() == "landlock+seccomp+rlimits"
    monkeypatch.setattr(isolation, "_landlock_problem", lambda: "no Landlock")
    with pytest.raises(isolation.NoIsolation, match="bwrap: no user namespaces; uid: not root; landlock: no Landlock"):
        launcher.choose_mode()
    assert launcher.isolation_available() is None
    assert launcher.choose_mode(allow_unsandboxed=True) == "none"
    with pytest.raises(isolation.NoIsolation, match="graded nothing .this is not the student's fault") as refused:
        Worker(sub, limits=LIMITS).start()
    assert isinstance(refused.value, WorkerError) and "run the grader as root" in str(refused.value)
    monkeypatch.setenv("GRADER_ISOLATION", "uid")
    with pytest.raises(isolation.NoIsolation, match="GRADER_ISOLATION=uid: not root"):
        Worker(sub, limits=LIMITS).start()


def test_the_fallback_really_runs_under_landlock(tmp_path, monkeypatch):
    if landlock.abi_version() < 1:
        pytest.skip("Landlock not available")
    sub = write(tmp_path, {"probe.py": "import os\ndef ls(p):\n    try:\n        return os.listdir(p)\n"
                                       "    except OSError as e:\n        return type(e).__name__\n"})
    monkeypatch.setattr(isolation, "_bwrap_problem", lambda: "no user namespaces")
    with Worker(sub, limits=LIMITS) as w:
        assert w.mode == "landlock" and w.applied["landlock"] >= 1 and w.applied.get("caps_dropped")
        assert w.call("probe", "ls", ["/"]).value == "PermissionError"


TORCH_STUDENT = """
import numpy as np
import torch
from torch import nn

def preprocess(images, labels):
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)[:, None] / 255.0)
    return x, torch.as_tensor(np.asarray(labels, dtype=np.int64))

def build_convnet():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10))

def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

def train(model, images, labels, epochs=1, batch_size=64, seed=0):
    torch.manual_seed(seed)
    x, y = preprocess(images, labels)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            loss = nn.functional.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model
"""


@pytest.mark.slow
def test_describe_and_train_a_torch_model_inside_the_sandbox(tmp_path):
    sub = write(tmp_path, {"convnet.py": TORCH_STUDENT})
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    images = np.zeros((600, 28, 28), np.uint8)
    images[np.arange(600), labels * 2 + 3, 5:20] = 255  # the label is drawn as a row: learnable
    test_labels = rng.integers(0, 10, 200)
    test_images = np.zeros((200, 28, 28), np.uint8)
    test_images[np.arange(200), test_labels * 2 + 3, 5:20] = 255
    lim = SandboxLimits(time_limit_s=240, memory_limit_mb=3072, forbidden_imports=("tensorflow", "keras", "jax"),
                        packages=("numpy", "torch"))
    with Worker(sub, limits=lim) as w:
        d = w.describe_model("convnet", "build_convnet", (2, 1, 28, 28))
        n = w.call("convnet", "count_parameters", [Build("build_convnet")])
        bad = w.call("convnet", "count_parameters", [Build("build_nothing")])
        probe = test_images.astype(np.float32)[:, None] / np.float32(255)  # model input: NCHW in [0, 1]
        p = w.train_and_probe("convnet", images, labels, probe, epochs=3, seed=0, threads=1)
    assert d.ok, d
    assert [layer["type"] for layer in d.value["layers"]] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [layer["params"] for layer in d.value["layers"]] == [40, 0, 0, 0, 6770]
    assert d.value["layers"][2]["output_shape"] == [2, 4, 13, 13]
    assert d.value["trainable_params"] == 6810 and d.value["output_shape"] == [2, 10]
    assert n.ok and n.value == 6810
    assert bad.error.type == "MissingFunction" and "build_nothing" in bad.error.message
    assert p.ok, p
    assert p.value["names"] == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert [a.shape for a in p.value["params"]] == [(4, 1, 3, 3), (4,), (10, 676), (10,)]
    assert all(a.dtype == np.float32 for a in p.value["params"]) and p.value["probe_logits"].dtype == np.float32
    assert (p.value["probe_logits"].argmax(1) == test_labels).mean() > 0.9
    assert 0 < p.value["train_seconds"] <= p.duration_s and p.value["threads"] == 1
    assert not w.violations


def test_a_worker_can_start_in_the_background(tmp_path, mode):
    sub = write(tmp_path, {"echo.py": ECHO})
    early = Worker(sub, limits=LIMITS, mode=mode)
    early.start(wait=False)
    unused = Worker(sub, limits=LIMITS, mode=mode)
    unused.start(wait=False)
    try:
        assert early.startup_s is None
        assert early.call("echo", "echo", [5]).value == [[5], {}]
        assert early.startup_s is not None and early.alive
    finally:
        early.close()
        unused.close()  # never awaited: closed cleanly all the same
    assert not early.alive and not unused.alive
    assert early.call("echo", "echo", [5]).status == "crashed"
