"""The reference convnet trains: 99 %+ on real MNIST (slow), repeatable for a fixed seed, both recipes run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.mnist import load_mnist
from solutions import convnet


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    """The first 2,048 training digits, raw uint8."""
    x_train, y_train, _, _ = mnist
    return x_train[:2048], y_train[:2048]


def _trained(images, labels, seed: int = 0, **kw) -> tuple[torch.nn.Module, dict]:
    """Build with ``seed`` and train; one thread unless told (runs are bitwise repeatable per thread count)."""
    kw.setdefault("threads", 1)
    torch.manual_seed(seed)
    model = convnet.build_convnet()
    history = convnet.train(model, images, labels, seed=seed, **kw)
    return model, history


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_training_is_repeatable_for_a_seed(small):
    x, y = small[0][:512], small[1][:512]
    first, h1 = _trained(x, y, seed=3, epochs=1)
    second, h2 = _trained(x, y, seed=3, epochs=1)
    assert _same_weights(first, second), "same seed, same data: the trained weights must be identical"
    assert h1["loss"] == h2["loss"]
    torch.manual_seed(3)
    other = convnet.build_convnet()
    convnet.train(other, x, y, seed=4, epochs=1, threads=1)  # same initial weights, different shuffling
    assert not _same_weights(first, other), "the seed must drive the shuffling"


def test_raw_and_preprocessed_inputs_train_alike(small):
    x, y = small
    raw, _ = _trained(x[:256], y[:256], epochs=1)
    pre, _ = _trained(*convnet.preprocess(x[:256], y[:256]), epochs=1)
    assert _same_weights(raw, pre), "train should scale uint8 images exactly as preprocess does"


def test_seed_recipe_learns_on_a_subset(small):
    x, y = small
    model, history = _trained(x, y, recipe="seed", epochs=1)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and history["seconds"] > 0
    assert convnet.evaluate(model, x, y) > 0.5, "one RMSprop epoch over 2,048 digits should beat chance (0.1) by far"


def test_train_leaves_a_plain_model_and_does_not_touch_inputs(small):
    x, y = small
    xc, yc = x[:128].copy(), y[:128].copy()
    model, history = _trained(xc, yc, epochs=1, batch_size=50)  # 128 = 2 * 50 + 28: a partial last batch
    np.testing.assert_array_equal(xc, x[:128])
    np.testing.assert_array_equal(yc, y[:128])
    assert set(history) >= {"loss", "accuracy", "seconds"} and len(history["accuracy"]) == 1
    assert all(p.is_contiguous() for p in model.parameters()), "train should hand the model back in the default layout"
    pred = convnet.predict(model, x[:128])
    assert pred.dtype == np.int64 and pred.shape == (128,)
    assert convnet.evaluate(model, x[:128], y[:128]) == pytest.approx(float((pred == y[:128]).mean()))


def test_train_rejects_mismatched_labels(small):
    x, y = small
    with pytest.raises(ValueError, match="labels"):
        convnet.train(convnet.build_convnet(), x[:10], y[:9], epochs=1)


@pytest.mark.slow
def test_reference_reaches_99_percent_on_mnist(mnist):
    x_train, y_train, x_test, y_test = mnist
    model, _ = _trained(x_train, y_train, seed=0, threads=None)  # the defaults: what the grader runs
    accuracy = convnet.evaluate(model, x_test, y_test)
    assert accuracy >= 0.99, f"the reference must earn full marks (>= 0.99), got {accuracy:.4f}"
