"""mnist_accuracy can only be earned by training: the test set never enters the sandbox, the student's
``predict`` plays no part, and the trained weights are scored in the reference architecture here.

None of these trains for real: the student ``train`` returns at once, because every check below happens
before (or instead of) a meaningful accuracy. The one full training is in tests/test_convnet_training.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.mnist import load_mnist
from grader.sandbox import launcher
from grader.suites import mnist_accuracy as suite
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
