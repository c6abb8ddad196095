"""What mnist_accuracy does around the training, made cheap (issue 11) without changing what it scores:
the data read once and shared read-only, the test set scored channels-last on a fixed number of threads.
None of these trains; the grading overhead itself is measured by benchmarks/grade_reference.py --with-mnist.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from coursekit.course import MNIST_FILES
from coursekit.mnist import MnistDataError, gz_name, load_mnist, resolve_mnist_dir
from grader.suites import mnist_accuracy as suite
from solutions import convnet


@pytest.fixture()
def mnist_copy(tmp_path, monkeypatch) -> Path:
    """A private copy of the four MNIST files, made the directory load_mnist resolves to."""
    source = resolve_mnist_dir()
    for name in MNIST_FILES:
        shutil.copy2(source / gz_name(name), tmp_path / gz_name(name))
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    return tmp_path


def test_the_data_is_read_once_shared_read_only_and_read_again_when_a_file_changes(mnist_copy):
    first = suite.mnist_arrays()
    assert suite.mnist_arrays() is first, "the second call must not read the files again"
    for fresh, shared in zip(load_mnist(mnist_copy), first, strict=True):
        assert np.array_equal(fresh, shared) and fresh.dtype == shared.dtype
    for array in first:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    labels = mnist_copy / gz_name(MNIST_FILES[-1])
    labels.write_bytes(labels.read_bytes())  # same content, new file times: read again
    again = suite.mnist_arrays()
    assert again is not first and all(np.array_equal(a, b) for a, b in zip(again, first))


def test_a_changed_file_is_verified_again_not_served_from_the_cache(mnist_copy):
    suite.mnist_arrays()
    images = mnist_copy / gz_name(MNIST_FILES[0])
    images.write_bytes(images.read_bytes()[:-100])  # truncated
    with pytest.raises(MnistDataError, match="truncated|short"):
        suite.mnist_arrays()


@pytest.fixture(scope="module")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = suite.mnist_arrays()
    return convnet.preprocess(x_test[:1500], y_test[:1500])


def test_scoring_counts_what_the_reference_forward_pass_predicts(test_images):
    images, _ = test_images
    torch.manual_seed(3)
    model = convnet.build_convnet().eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(images)).argmax(dim=1).numpy()  # NCHW, torch's default threads
    assert suite.accuracy_of(model, images, predicted, batch_size=256) >= 1 - 2 / len(images)  # near-ties aside
    wrong = (predicted + 1) % 10
    assert suite.accuracy_of(model, images, wrong) == 0.0
    half = predicted.copy()
    half[::2] = wrong[::2]
    assert abs(suite.accuracy_of(model, images, half, batch_size=100) - 0.5) <= 2 / len(images)


def test_scoring_gives_back_the_models_layout_and_torchs_threads_even_when_it_raises(test_images):
    images, labels = test_images
    threads = torch.get_num_threads()
    model = convnet.build_convnet()
    suite.accuracy_of(model, images[:300], labels[:300], threads=max(1, threads - 1) if threads > 1 else 2)
    assert torch.get_num_threads() == threads
    assert all(p.is_contiguous() for p in model.parameters())

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        suite.accuracy_of(nn.Sequential(nn.Conv2d(1, 2, 3), Broken()), images[:10], labels[:10], threads=1)
    assert torch.get_num_threads() == threads


#: Test accuracies measured with benchmarks/train_mnist.py (README "Benchmarks", MNIST spread): the lowest of the
#: reference and its honest variants (RMSprop, batch 64, learning rate 1e-3; one pass from the grader's start,
#: seeds and thread counts as listed there), and models that are genuinely weaker.
HONEST_MIN_MEASURED = 0.9873
WEAK_MEASURED = {"dense net of chapter 2 (the book)": 0.9784, "convnet trained on a tenth of the digits": 0.9605}
MARGIN = 0.004


def test_the_scale_gives_every_measured_honest_model_full_marks_with_a_margin_and_weak_ones_less():
    """Issue 18: a correct model's grade must not hang on the seed or the CPU (0.990 sat 0.0007 under the
    reference's worst seed), while a weak model still does not reach full marks."""
    from coursekit.course import load_course

    scale = load_course().mnist_scale
    assert scale.share(HONEST_MIN_MEASURED - MARGIN) == 1.0
    for what, acc in WEAK_MEASURED.items():
        assert scale.share(acc) < 0.85, what
