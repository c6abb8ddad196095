"""Self-check for the exercise convnet (convnet.py): preprocess, the two models, parameter counts, summary.

Training (the exercise mnist_accuracy) is checked by the grader on the real data; here only the build.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = pytest.mark.convnet

SEED_LAYER_PARAMS = [320, 18_496, 36_928, 36_928, 650]  # Conv2D x3, Dense 64, Dense 10 in the book's summary


def _layers_with_params(model) -> list[tuple[str, int]]:
    """(type name, parameter count) of every leaf module that holds parameters, in definition order."""
    return [(type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
            for m in model.modules() if next(m.children(), None) is None and any(True for _ in m.parameters(recurse=False))]


def _feature_sizes(model, n: int = 2) -> list[tuple[str, tuple[int, ...]]]:
    """(type name, output shape) of every leaf module, in execution order, for n zero images."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda mod, _i, out: seen.append((type(mod).__name__, tuple(out.shape))))
             for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            model(torch.zeros(n, 1, 28, 28))
    finally:
        for h in hooks:
            h.remove()
    return seen


# -- preprocess ----------------------------------------------------------------------------------

def test_preprocess_shapes_dtypes_and_range(impl):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    before = images.copy()
    x, y = impl("convnet").preprocess(images, labels)
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == (5, 1, 28, 28), (
        f"expected (N, 1, 28, 28) channels first, got {x.shape}: add the channel axis at position 1 (PyTorch is NCHW)")
    assert x.dtype == np.float32, f"images should be float32, got {x.dtype}"
    assert y.dtype == np.int64 and y.shape == (5,), (
        f"labels should be int64 class indices of shape (N,), got {y.dtype} {y.shape} (no one-hot for CrossEntropyLoss)")
    np.testing.assert_array_equal(y, labels)
    assert x.min() >= 0.0 and x.max() <= 1.0, f"pixels should be scaled to [0, 1], got [{x.min()}, {x.max()}]"
    assert x[0, 0, 0, 1] == 1.0, (
        f"255 should become 1.0, got {x[0, 0, 0, 1]} (uint8 arithmetic overflowing, or divided by 256?)")
    np.testing.assert_allclose(x[:, 0], images / 255.0, rtol=1e-6, err_msg="every pixel should be divided by 255")
    np.testing.assert_array_equal(images, before, err_msg="preprocess must not modify its input")


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.just(28), st.just(28))))
def test_preprocess_is_division_by_255(impl, images):
    x, _ = impl("convnet").preprocess(images, np.zeros(len(images), dtype=np.int64))
    np.testing.assert_allclose(np.asarray(x)[:, 0], images.astype(np.float64) / 255.0, rtol=1e-6, atol=0)


# -- the models ----------------------------------------------------------------------------------

def test_convnet_parameters_per_layer(impl):
    model = impl("convnet").build_convnet()
    dense = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if dense and dense[0].in_features != 576:
        pytest.fail(f"the first dense layer should take 3*3*64 = 576 inputs, it takes {dense[0].in_features}: "
                    "follow the sizes 28 -> 26 -> 13 -> 11 -> 5 -> 3 (forgot a pooling layer, or padding='same'?)")
    layers = _layers_with_params(model)
    counts = [c for _, c in layers]
    assert counts == SEED_LAYER_PARAMS, (
        f"parameters per layer should be {SEED_LAYER_PARAMS} (Conv2d 1->32, 32->64, 64->64 with 3x3 kernels, "
        f"Linear 576->64, 64->10), got {counts} for {[n for n, _ in layers]}")


def test_convnet_total_parameters(impl):
    cn = impl("convnet")
    model = cn.build_convnet()
    assert sum(p.numel() for p in model.parameters()) == 93_322, "the book's convnet has 93,322 parameters"
    assert cn.count_parameters(model) == 93_322, "count_parameters(build_convnet()) should be 93,322"


def test_convnet_feature_map_sizes(impl):
    sizes = [(name, shape) for name, shape in _feature_sizes(impl("convnet").build_convnet())
             if name in ("Conv2d", "MaxPool2d")]
    spatial = [shape[2:] for _, shape in sizes]
    if spatial and spatial[0] == (28, 28):
        pytest.fail("the first convolution keeps 28x28: no padding ('valid'), a 3x3 kernel gives 26x26")
    assert [n for n, _ in sizes] == ["Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d", "Conv2d"], (
        f"expected conv, pool, conv, pool, conv; got {[n for n, _ in sizes]} (forgot a pooling layer?)")
    assert [s for _, s in sizes] == [(2, 32, 26, 26), (2, 32, 13, 13), (2, 64, 11, 11), (2, 64, 5, 5), (2, 64, 3, 3)], (
        f"feature maps should go 26 -> 13 -> 11 -> 5 -> 3 with 32, 32, 64, 64, 64 channels; got {[s for _, s in sizes]}")


def test_convnet_has_relus_after_hidden_layers(impl):
    names = [name for name, _ in _feature_sizes(impl("convnet").build_convnet())]
    assert names.count("ReLU") == 4, (
        f"expected a ReLU after each of the 3 convolutions and after the 64-unit dense layer, found {names.count('ReLU')}"
        " -- without them the layers collapse into one linear map")


@pytest.mark.parametrize("n", [1, 3])
def test_convnet_returns_logits(impl, n):
    model = impl("convnet").build_convnet()
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(torch.rand(n, 1, 28, 28))
    assert tuple(out.shape) == (n, 10), f"expected logits of shape ({n}, 10), got {tuple(out.shape)}"
    rows = out.sum(dim=1)
    assert not (torch.allclose(rows, torch.ones(n), atol=1e-4) and bool((out >= 0).all())), (
        "the model outputs probabilities: drop the softmax, CrossEntropyLoss applies log-softmax itself")


def test_no_maxpool_base(impl):
    cn = impl("convnet")
    model = cn.build_convnet_no_maxpool()
    names = [name for name, _ in _feature_sizes(model)]
    assert "MaxPool2d" not in names, "build_convnet_no_maxpool must not pool"
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 28, 28))
    assert tuple(out.shape) == (2, 64, 22, 22), (
        f"three valid 3x3 convolutions take 28 -> 26 -> 24 -> 22: expected (2, 64, 22, 22), got {tuple(out.shape)}")
    assert cn.count_parameters(model) == 55_744, "the conv base has 320 + 18,496 + 36,928 = 55,744 parameters"


def test_count_parameters_skips_frozen_tensors(impl):
    cn = impl("convnet")
    model = nn.Sequential(nn.Conv2d(3, 8, 5), nn.Linear(4, 2))
    assert cn.count_parameters(model) == (5 * 5 * 3 + 1) * 8 + (4 + 1) * 2, "count weights and biases, (k*k*C_in + 1) * C_out"
    for p in model[0].parameters():
        p.requires_grad_(False)
    assert cn.count_parameters(model) == 10, "frozen tensors (requires_grad=False) are not trainable parameters"


def test_summary_reports_the_seed_numbers(impl):
    cn = impl("convnet")
    text = cn.summary(cn.build_convnet())
    assert isinstance(text, str), "summary returns the table as a string"
    assert "93,322" in text, "the table should end with 'Total params: 93,322'"
    for count in SEED_LAYER_PARAMS[1:]:
        assert str(count) in text or f"{count:,}" in text, f"the table should list a layer with {count:,} parameters"
    assert "26" in text and "576" in text, "the table should show the output shapes (26 x 26 maps, 576 after Flatten)"


# -- train: the training loop (exercise mnist_accuracy) ------------------------------------------

def _toy_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images whose label is drawn as a bright row at height 3 + 2 * label: easy to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
    images[np.arange(n), labels * 2 + 3, 4:24] = 255
    return images, labels


@pytest.mark.mnist_accuracy
def test_train_learns_a_toy_set(impl):
    cn = impl("convnet")
    images, labels = _toy_digits(512)
    torch.manual_seed(0)
    model = cn.build_convnet()
    history = cn.train(model, images, labels, epochs=3, batch_size=32, seed=0)
    assert isinstance(history, dict) and len(history.get("loss", [])) == 3 and len(history.get("accuracy", [])) == 3, (
        f"train returns {{'loss': [...], 'accuracy': [...], 'seconds': ...}} with one entry per epoch, got {history!r:.200}")
    assert history["loss"][-1] < history["loss"][0], f"the loss should fall from epoch to epoch, got {history['loss']}"
    with torch.no_grad():
        predicted = model.eval()(torch.as_tensor(images[:, None] / np.float32(255))).argmax(1).numpy()
    assert (predicted == labels).mean() > 0.9, (
        f"after 3 epochs the model should label this easy toy set (a bright row per digit) almost perfectly, got "
        f"{(predicted == labels).mean():.2f}: check zero_grad / backward / step, and that the model is in train() mode")


@pytest.mark.mnist_accuracy
def test_train_steps_once_per_batch(impl, monkeypatch):
    """zero_grad, optimizer.step and schedule.step once per batch; 100 images in batches of 32 -> 4 batches per epoch."""
    cn = impl("convnet")
    counts = {"zero_grad": 0, "step": 0, "schedule": 0}
    make_optimizer, make_schedule = cn.make_optimizer, cn.make_schedule

    def counting_optimizer(model, plan):
        optimizer = make_optimizer(model, plan)
        zero_grad = optimizer.zero_grad
        optimizer.zero_grad = lambda *a, **k: (counts.__setitem__("zero_grad", counts["zero_grad"] + 1), zero_grad(*a, **k))[1]
        optimizer.register_step_post_hook(lambda *_: counts.__setitem__("step", counts["step"] + 1))
        return optimizer

    def counting_schedule(optimizer, plan, total_steps):
        schedule = make_schedule(optimizer, plan, total_steps)
        step = schedule.step
        schedule.step = lambda *a, **k: (counts.__setitem__("schedule", counts["schedule"] + 1), step(*a, **k))[1]
        return schedule

    monkeypatch.setattr(cn, "make_optimizer", counting_optimizer)
    monkeypatch.setattr(cn, "make_schedule", counting_schedule)
    images, labels = _toy_digits(100)
    cn.train(cn.build_convnet(), images, labels, epochs=2, batch_size=32)
    assert counts == {"zero_grad": 8, "step": 8, "schedule": 8}, (
        f"2 epochs of 4 batches: expected zero_grad, optimizer.step and schedule.step 8 times each, got {counts} "
        f"(the last batch of an epoch may be smaller; the schedule steps after every batch, not every epoch)")
