"""mnist_accuracy can only be earned by training: the test set never enters the sandbox, the student's
``predict`` plays no part, and the trained weights are scored in the reference architecture here.

None of these trains for real: the student ``train`` returns at once, because every check below happens
before (or instead of) a meaningful accuracy. The one full training is in tests/test_convnet_training.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.course import load_course
from coursekit.mnist import load_mnist
from grader.course_secret import SecretError, course_secret, derive_seed, secret_path
from grader.sandbox import launcher
from grader.submission import prepare
from grader.sandbox_runtime.torch_ops import initial_parameters
from grader.suites import mnist_accuracy as suite
from grader.suites.tolerances import MNIST_INIT_CORRELATION
from grading_helpers import grade, reference_submission
from solutions import convnet

NO_TRAINING = """
def train(model, images, labels, epochs=None, batch_size=None, seed=0, **kwargs):
    return {"loss": [], "accuracy": [], "seconds": 0.0}
"""


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def graded(tmp_path, code: str):
    report = grade(reference_submission(tmp_path / "sub", {"convnet": code}), only=["mnist_accuracy"])
    return report.exercise("mnist_accuracy")


def test_a_predict_that_knows_the_public_test_labels_earns_nothing(tmp_path, mnist, monkeypatch):
    """The attack that scored 20/20 in 5 s: no training, a predict that returns MNIST's public test labels."""
    _, _, x_test, y_test = mnist
    sent: list = []
    real_request = launcher.Worker._request

    def spy(self, meta, value=None):
        sent.append(value)
        return real_request(self, meta, value)

    monkeypatch.setattr(launcher.Worker, "_request", spy)
    cheat = NO_TRAINING + f"""
import numpy as _np
_ANSWERS = _np.frombuffer({"".join(map(str, y_test.tolist())).encode()!r}, dtype=_np.uint8).astype(_np.int64) - 48

def predict(model, images, batch_size=1000):
    return _ANSWERS[:len(images)].copy()
"""
    ex = graded(tmp_path, cheat)
    assert ex.score == 0 and ex.status == "failed", ex
    assert "below" in ex.first_failure
    # structurally: not one test image went to the worker
    arrays = [a for v in sent if isinstance(v, dict) for a in v.values() if isinstance(a, np.ndarray)]
    assert arrays, "the spy saw the training request"
    test_rows = {row.tobytes() for row in x_test.reshape(len(x_test), -1)[:2000]}
    for a in arrays:
        if a.dtype == np.uint8 and a.ndim == 3:
            assert not test_rows & {row.tobytes() for row in a.reshape(len(a), -1)}, "a test image entered the worker"
        assert a.shape[0] != len(x_test), f"an array of {a.shape} (the test set's length) was sent to the worker"


WIDER_DENSE = NO_TRAINING + """
def build_convnet():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 128), nn.ReLU(), nn.Linear(128, 10),
    )
"""


def test_parameter_shapes_that_do_not_fit_the_reference_are_named(tmp_path):
    ex = graded(tmp_path, WIDER_DENSE)
    assert ex.score == 0 and ex.status == "failed"
    message = ex.first_failure
    assert "'9.weight'" in message and "(128, 576)" in message and "(64, 576)" in message, message
    assert "Linear" in message and "10 parameter tensors" in message, message


def _variant(head: str, tail: str = "nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10)", relu2: str = "nn.ReLU(), ",
             flatten: str = "nn.Flatten()") -> str:
    return NO_TRAINING + f"""
class FlattenChannelsLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(len(x), -1)

def build_convnet():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), {relu2}nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        {flatten}, {tail}{head},
    )
"""


@pytest.mark.parametrize("code, named", [
    (_variant(head=", nn.Softmax(dim=1)"), "softmax at the end"),
    (_variant(head="", flatten="FlattenChannelsLast()"), "channels-last order"),
    (_variant(head="", relu2=""), "no ReLU after Conv2d(32, 64"),
    (_variant(head=", nn.Tanh()"), "max |diff|"),
], ids=["softmax", "flatten-order", "missing-relu", "unknown"])
def test_a_forward_pass_unlike_the_reference_fails_naming_the_difference(tmp_path, code, named):
    ex = graded(tmp_path, code)
    assert ex.score == 0 and ex.status == "failed"
    assert "differs from the reference with the same weights" in ex.first_failure and named in ex.first_failure, ex.first_failure


# ----------------------------------------------------------------------------- the trusted side alone

@pytest.fixture(scope="module")
def probe(mnist):
    x_train, y_train, _, _ = mnist
    idx = suite.probe_indices(len(x_train))
    return convnet.preprocess(x_train[idx], y_train[idx])[0]


def test_the_probe_is_fixed_and_drawn_from_the_training_set():
    a, b = suite.probe_indices(60_000), suite.probe_indices(60_000)
    assert np.array_equal(a, b) and len(np.unique(a)) == suite.PROBE_SIZE and a.max() < 60_000


def test_each_planted_forward_mistake_is_named_and_no_other(probe):
    torch.manual_seed(1)
    reference = convnet.build_convnet().eval()
    x = torch.from_numpy(probe)
    planted = suite.mistakes(reference)
    assert len(planted) == 4 + 4  # softmax, log_softmax, ReLU on the logits, flatten order, 4 missing ReLUs
    with torch.no_grad():
        ours = reference(x).numpy()
        assert suite._close(ours, suite._forward(reference, x).numpy())
        for what, mistake in planted.items():
            message = suite.diagnose(reference, probe, mistake(x).numpy())
            assert what in message, (what, message)
            others = [w for w in planted if w != what and w in message]
            assert not others, (what, others)


@pytest.mark.parametrize("reply", [
    None, [], {"names": ["a"], "params": []},
    {"names": ["a"], "params": [np.zeros(3, np.float64)], "probe_logits": np.zeros((64, 10), np.float32)},
    {"names": [1], "params": [np.zeros(3, np.float32)], "probe_logits": np.zeros((64, 10), np.float32)},
    {"names": [], "params": [], "probe_logits": [[0.0] * 10] * 64},
    {"names": [], "params": [], "probe_logits": np.zeros((63, 10), np.float32)},
])
def test_a_malformed_reply_from_the_worker_is_a_failure_not_a_crash(reply):
    with pytest.raises(suite.Fail):
        suite.validated(reply, 10.0, 64)


def test_training_time_from_the_worker_is_bounded_by_the_launchers_clock():
    reply = {"names": [], "params": [], "probe_logits": np.zeros((64, 10), np.float32), "train_seconds": 1e9, "threads": 2}
    assert suite.validated(reply, 12.5, 64).train_seconds == 12.5


def test_non_finite_weights_are_a_clear_failure():
    reference = convnet.build_convnet()
    names = [n for n, _ in reference.named_parameters()]
    params = [p.detach().numpy().copy() for p in reference.parameters()]
    params[3][0] = np.nan
    trained = suite.Trained(names, params, np.zeros((64, 10), np.float32), 1.0, 1)
    with pytest.raises(suite.Fail, match="NaN or infinite"):
        suite.load_into(reference, trained)


def test_missing_and_extra_parameter_tensors_are_named():
    reference = convnet.build_convnet()
    named = list(reference.named_parameters())
    names, params = [n for n, _ in named], [p.detach().numpy().copy() for _, p in named]
    with pytest.raises(suite.Fail, match=r"lacks the reference's parameter 10 \('11.bias'"):
        suite.load_into(reference, suite.Trained(names[:-1], params[:-1], np.zeros((64, 10), np.float32), 1.0, 1))
    with pytest.raises(suite.Fail, match=r"extra parameter 11 \('extra'"):
        suite.load_into(reference, suite.Trained(names + ["extra"], params + [np.zeros(3, np.float32)],
                                                 np.zeros((64, 10), np.float32), 1.0, 1))


def test_the_reference_with_its_own_weights_reproduces_its_logits(probe):
    """No false alarm: the same weights through a channels-last copy (as train leaves them) agree within tolerance."""
    torch.manual_seed(0)
    model = convnet.build_convnet().eval()
    with torch.no_grad(), convnet.channels_last(model):
        theirs = model(torch.from_numpy(probe).contiguous(memory_format=torch.channels_last)).numpy()
    reference = convnet.build_convnet()
    trained = suite.Trained([n for n, _ in model.named_parameters()], [p.detach().numpy().copy() for p in model.parameters()],
                            theirs, 1.0, 1)
    suite.load_into(reference, trained)
    with torch.no_grad():
        assert suite._close(theirs, reference.eval()(torch.from_numpy(probe)).numpy())



def test_the_leaderboards_training_time_is_measured_by_the_grader(tmp_path):
    """The worker's own training time is the student's to fake (here: a frozen clock); the time that
    insights and the Gradescope leaderboard show is the grader's wall clock around the training request."""
    frozen = """
import time as _time
_time.perf_counter = lambda: 42.0

def train(model, images, labels, epochs=None, batch_size=None, seed=0, **kwargs):
    _time.sleep(1.5)
    return {"loss": [], "accuracy": [], "seconds": 0.0}
"""
    ex = graded(tmp_path, frozen)
    (test,) = [t for t in ex.tests if t.metrics]
    assert test.metrics["train_seconds"] >= 1.5


# ----------------------------------------------------------------------------- weights trained elsewhere (issue 17.7)

SMALL_CONVNET = """import numpy as np
import torch
from torch import nn


def build_convnet():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
"""


def _int4_module(params: list[np.ndarray]) -> str:
    """A convnet.py tail whose train() restores ``params`` (int4 + zlib + base85, as the issue's attack did)."""
    import base64
    import zlib

    scales = [float(np.abs(p).max()) / 7 or 1.0 for p in params]
    codes = np.concatenate([np.clip(np.rint(p.ravel() / s), -7, 7).astype(np.int8) + 8 for p, s in zip(params, scales)])
    codes = np.append(codes, np.uint8(0)) if len(codes) % 2 else codes
    packed = (codes[0::2].astype(np.uint8) << 4 | codes[1::2].astype(np.uint8)).tobytes()
    blob = base64.b85encode(zlib.compress(packed, 9)).decode()
    return f"""
import base64 as _b64, zlib as _zlib

_BLOB = {blob!r}
_SCALES = {scales!r}

def train(model, images, labels, epochs=None, batch_size=None, seed=0, **kwargs):
    raw = np.frombuffer(_zlib.decompress(_b64.b85decode(_BLOB)), np.uint8)
    codes = np.stack([raw >> 4, raw & 15], 1).ravel().astype(np.float32) - 8
    at = 0
    with torch.no_grad():
        for p, s in zip(model.parameters(), _SCALES):
            p.copy_(torch.from_numpy(codes[at:at + p.numel()].reshape(p.shape) * s))
            at += p.numel()
    return {{"loss": [], "accuracy": [], "seconds": 0.2}}
"""


@pytest.fixture(scope="module")
def trained_elsewhere(mnist) -> list[np.ndarray]:
    """The reference trained briefly (12,000 digits, one pass) from torch's own init with seed 7: weights as a
    student could bring from home, above the zero mark of the scale (about 0.96-0.97 test accuracy)."""
    x_train, y_train, _, _ = mnist
    x, y = convnet.preprocess(x_train[:12_000], y_train[:12_000])
    torch.manual_seed(7)
    model = convnet.build_convnet()
    with suite.torch_threads(1):
        convnet.train(model, x, y, seed=7)
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.slow
def test_home_trained_weights_restored_by_train_earn_nothing(tmp_path, mnist, trained_elsewhere):
    """The issue's attack, scaled down: train() only restores weights trained elsewhere. They would score on
    their accuracy (checked here on the trusted side); the grader awards nothing, says why without accusing,
    and flags the result for the instructor."""
    _, _, x_test, y_test = mnist
    reference = convnet.build_convnet()
    with torch.no_grad():
        for p, v in zip(reference.parameters(), trained_elsewhere):
            p.copy_(torch.from_numpy(v))
    x, y = convnet.preprocess(x_test, y_test)
    assert suite.accuracy_of(reference, x, y) > load_course().mnist_scale.zero_below + 0.005  # worth points on main

    sub = reference_submission(tmp_path / "sub")
    (sub / "convnet.py").write_text(SMALL_CONVNET + _int4_module(trained_elsewhere), encoding="utf-8")  # < 64 KB
    ex = grade(sub, only=["mnist_accuracy"]).exercise("mnist_accuracy")
    assert ex.score == 0 and ex.status == "failed", ex
    assert "do not descend from the starting weights the grader gave your model" in ex.first_failure, ex.first_failure
    (test,) = ex.tests
    assert test.metrics["not_from_grader_init"] == 1.0 and test.metrics["init_correlation"] < MNIST_INIT_CORRELATION
    assert "test_accuracy" not in test.metrics  # never scored


@pytest.mark.slow
def test_trained_weights_keep_their_own_init_and_not_anothers(mnist):
    """The rule on the trusted side: a short honest training from the grader's init keeps every weight tensor
    correlated with it; the same trained weights compared with another seed's init are not. (Full one-pass
    trainings: benchmarks/train_mnist.py reports init_corr and other_init_corr per run.)"""
    x_train, y_train, _, _ = mnist
    x, y = convnet.preprocess(x_train[:6_000], y_train[:6_000])
    model = convnet.build_convnet()
    shapes = [tuple(p.shape) for p in model.parameters()]
    initial = initial_parameters(shapes, 1234)
    with torch.no_grad():
        for p, v in zip(model.parameters(), initial):
            p.copy_(torch.from_numpy(v))
    with suite.torch_threads(1):
        convnet.train(model, x, y, seed=1234, recipe=convnet.recipe_for("fast", learning_rate=6e-3))
    trained = [p.detach().numpy() for p in model.parameters()]
    assert not all(np.allclose(a, b) for a, b in zip(initial, trained))  # it did train
    own = suite.init_correlations(initial, trained)
    other = suite.init_correlations(initial_parameters(shapes, 4321), trained)
    assert len(own) == len(other) == 5  # the five weight tensors
    assert min(own) >= MNIST_INIT_CORRELATION, own
    assert max(abs(r) for r in other) < MNIST_INIT_CORRELATION / 2, other


def test_a_train_that_reinitialises_the_model_is_told_how_to_fix_it(tmp_path):
    """An honest mistake with the same effect (fresh weights inside train) gets the same clear, non-accusing
    message, and no points: the grade is for training the starting weights the grader set."""
    reinit = NO_TRAINING.replace("    return {", "    for m in model.modules():\n"
                                 "        if hasattr(m, 'reset_parameters'):\n            m.reset_parameters()\n    return {")
    ex = graded(tmp_path, reinit)
    assert ex.score == 0 and "without re-initialising it" in ex.first_failure, ex.first_failure
    assert "cheat" not in ex.first_failure.lower()


def test_the_worker_starts_from_the_seeded_init_and_the_seed_is_the_courses(tmp_path, monkeypatch):
    """The seed sent to the worker is derived from the course secret and the submission (the same on a regrade,
    another for other content); the untrained model comes back holding exactly initial_parameters(seed)."""
    seeds, replies = [], []
    real_train, real_validated = launcher.Worker.train_and_probe, suite.validated

    def spy_train(self, *args, **kwargs):
        seeds.append(kwargs["seed"])
        return real_train(self, *args, **kwargs)

    def spy_validated(reply, *args):
        replies.append(reply)
        return real_validated(reply, *args)

    monkeypatch.setattr(launcher.Worker, "train_and_probe", spy_train)
    monkeypatch.setattr(suite, "validated", spy_validated)
    graded(tmp_path / "a", NO_TRAINING)
    graded(tmp_path / "b", NO_TRAINING)
    graded(tmp_path / "c", NO_TRAINING + "\n# another submission\n")
    assert seeds[0] == seeds[1] != seeds[2] and seeds[0] != 0
    course = load_course()
    with prepare(tmp_path / "a" / "sub", course.student_package, course.modules) as ws:
        content_hash = ws.content_hash  # the gradebook's hash of the submission
    assert seeds[0] == derive_seed(course_secret(course), "mnist_accuracy", content_hash)
    expected = initial_parameters([tuple(p.shape) for p in convnet.build_convnet().parameters()], seeds[0])
    assert all(np.array_equal(a, b) for a, b in zip(replies[0]["params"], expected))


def test_the_sandbox_cannot_read_the_course_secret(tmp_path):
    course = load_course()
    key = course_secret(course).hex()
    reader = NO_TRAINING.replace("    return {", "    raise ValueError(open(%r).read())\n    return {" % str(secret_path(course)))
    ex = graded(tmp_path, reader)
    assert ex.score == 0 and key not in ex.first_failure and "building or training raised" in ex.first_failure, ex.first_failure
    assert "ValueError" not in ex.first_failure  # the open itself failed


def test_the_course_secret_is_created_once_private_and_never_released(tmp_path):
    from grader.release import release

    course = load_course().model_copy(update={"root": tmp_path})
    first = course_secret(course)
    assert len(first) == 32 and course_secret(course) == first
    assert secret_path(course).stat().st_mode & 0o777 == 0o600
    assert derive_seed(first, "x", "h") == derive_seed(first, "x", "h") != derive_seed(first, "x", "h2")
    assert derive_seed(first, "x", "h") != derive_seed(b"0" * 32, "x", "h")
    secret_path(course).write_text("not hex")
    with pytest.raises(SecretError, match="cannot be read"):
        course_secret(course)
    real = load_course()
    key = course_secret(real).hex()
    kit = tmp_path / "kit"
    release(real, kit)
    assert not any(key in f.read_text(errors="replace") for f in kit.rglob("*") if f.is_file())
    assert "integrity" not in (kit / "course.yml").read_text()
