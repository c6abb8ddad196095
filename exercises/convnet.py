# Generated from solutions/convnet.py by `grader stubs`: edit the bodies that raise
# NotImplementedError. Keep the signatures: the grader calls them as they are.
"""The small convnet of the seed chapter, in PyTorch: build it, count it, summarise it, train it on MNIST.

Exercises in this module (ids from course.yml):

* ``convnet`` -- :func:`preprocess`, :func:`build_convnet`, :func:`build_convnet_no_maxpool`,
  :func:`count_parameters`, :func:`summary`;
* ``mnist_accuracy`` -- :func:`build_convnet` + :func:`train`: the grader trains your model on the 60,000
  training digits and scores its predictions on the 10,000 test digits (full marks from 99 % accuracy).

Given to you, already working: :class:`Recipe` and :data:`RECIPES` (training hyper-parameters),
:func:`as_image_tensor`, :func:`predict` and :func:`evaluate`.

Conventions. Images are NCHW: ``(N, 1, 28, 28)``, channels first, as PyTorch layers expect (Keras, which the
book uses, is channels last: ``(N, 28, 28, 1)``). The model returns *logits* ``(N, 10)``; the softmax lives in
the loss (:class:`torch.nn.CrossEntropyLoss`), not in the model. This module imports no other exercise module.
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)
"""One MNIST image as the model sees it: (channels, height, width)."""

NUM_CLASSES = 10


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters: the optimiser, its learning-rate schedule, how many passes and how big a batch.

    ``schedule="constant"`` keeps ``learning_rate`` fixed (what Keras does by default).
    ``schedule="one_cycle"`` (Smith & Topin's *1cycle*, :class:`torch.optim.lr_scheduler.OneCycleLR`) warms the
    rate up from ``learning_rate / 25`` to ``learning_rate`` during the first ``warmup`` share of the steps, then
    anneals it (cosine) to almost zero: a large rate early moves fast, a tiny rate at the end settles the weights,
    which is why a couple of passes suffice. ``label_smoothing`` softens the one-hot targets, so the model is
    not pushed towards ever more confident logits on digits it already gets right.
    """

    optimizer: str  # "rmsprop" or "adam"
    learning_rate: float
    epochs: int
    batch_size: int
    schedule: str = "constant"  # or "one_cycle"
    warmup: float = 0.25  # one_cycle only: share of the steps spent warming up
    label_smoothing: float = 0.0  # s > 0: target 1 - s + s/10 for the true digit, s/10 for the others


RECIPES: dict[str, Recipe] = {
    # The book's recipe: model.compile(optimizer='rmsprop', ...); model.fit(..., epochs=5, batch_size=64).
    # Keras's RMSprop defaults are lr=1e-3, rho=0.9, epsilon=1e-7 (torch: alpha=0.9, eps=1e-7). 0.9927 in the book.
    "seed": Recipe(optimizer="rmsprop", learning_rate=1e-3, epochs=5, batch_size=64),
    # The reference's default: Adam with a one-cycle schedule and label smoothing, two passes: >= 0.991 on
    # seeds 0-4 (without smoothing, seeds 0 and 1 scored about 0.1 % lower). See benchmarks/train_mnist.py.
    "fast": Recipe(optimizer="adam", learning_rate=3e-3, epochs=2, batch_size=64, schedule="one_cycle",
                   label_smoothing=0.1),
}


def as_image_tensor(images: Any) -> torch.Tensor:
    """Images as the float32 NCHW tensor ``(N, 1, 28, 28)`` the model takes (given, not an exercise).

    Integer images (e.g. MNIST's uint8) are raw 0-255 intensities and get divided by 255; floating images
    are taken as already scaled to [0, 1] (the output of :func:`preprocess`) and kept. ``(N, 28, 28)`` and
    channels-last ``(N, 28, 28, 1)`` get their channel axis moved to position 1. The input is never modified.
    """
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim == 3:
        t = t.unsqueeze(1)
    elif t.ndim == 4 and t.shape[1] != 1 and t.shape[-1] == 1:
        t = t.permute(0, 3, 1, 2)
    if t.ndim != 4 or t.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(np.shape(images))}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"expected integer or floating images, got dtype {t.dtype}")
    if t.is_floating_point():
        return t.to(torch.float32).contiguous()
    return (t.to(torch.float32) / 255.0).contiguous()


def preprocess(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw MNIST arrays into model input: ``(x, y)`` numpy arrays.

    Parameters
    ----------
    images : uint8 array-like ``(N, 28, 28)`` of intensities 0..255 (``(N, 1, 28, 28)`` is accepted too).
    labels : integer array-like ``(N,)`` of digits 0..9.

    Returns
    -------
    x : float32 ``(N, 1, 28, 28)`` with values in [0, 1] -- a channel axis added in position 1 (NCHW) and every
        pixel divided by 255 (the book does ``astype('float32') / 255`` with channels last, ``(N, 28, 28, 1)``).
    y : int64 ``(N,)`` -- class indices. PyTorch's cross-entropy takes indices, so there is no one-hot
        ``to_categorical`` step as in Keras.

    Floating images are taken as already scaled and must lie in [0, 1]. The inputs are never modified.
    ``ValueError`` (naming the shapes) for images that are not ``(N, 28, 28)``, labels that are not ``(N,)``
    with the same ``N``, or labels outside 0..9.

    Classic mistakes: integer division or dividing a uint8 array in place (``x /= 255`` fails or truncates to 0);
    forgetting the channel axis, so the first convolution sees 28 "channels" of width 28.

    >>> x, y = preprocess(np.full((2, 28, 28), 255, np.uint8), [3, 7])
    >>> x.shape, x.dtype, float(x.max()), y.tolist()
    ((2, 1, 28, 28), dtype('float32'), 1.0, [3, 7])
    """
    raise NotImplementedError("convnet: replace this line with your code (convnet.preprocess)")


def build_convnet() -> nn.Module:
    """The book's MNIST convnet as an :class:`torch.nn.Sequential`; maps ``(N, 1, 28, 28)`` to logits ``(N, 10)``.

    Layers (output shape for one image, channels first) and trainable parameters:

    ==========================  ==============  ==========================
    layer                       output          parameters
    ==========================  ==============  ==========================
    Conv2d(1, 32, 3) + ReLU     (32, 26, 26)    (3*3*1 + 1) * 32  =    320
    MaxPool2d(2)                (32, 13, 13)    0
    Conv2d(32, 64, 3) + ReLU    (64, 11, 11)    (3*3*32 + 1) * 64 = 18,496
    MaxPool2d(2)                (64, 5, 5)      0
    Conv2d(64, 64, 3) + ReLU    (64, 3, 3)      (3*3*64 + 1) * 64 = 36,928
    Flatten                     (576,)          0
    Linear(576, 64) + ReLU      (64,)           (576 + 1) * 64    = 36,928
    Linear(64, 10)              (10,)           (64 + 1) * 10     =    650
    ==========================  ==============  ==========================

    Total 93,322. Output sizes: a "valid" k x k convolution (no padding, stride 1) maps n to ``n - k + 1``
    and a 2 x 2 max-pool maps n to ``n // 2`` (floor), so 28 -> 26 -> 13 -> 11 -> 5 -> 3 and the flattened
    map holds 3 * 3 * 64 = 576 numbers. A convolution has ``(k*k*C_in + 1) * C_out`` parameters: one k x k
    kernel per (input, output) channel pair plus one bias per output channel -- e.g. the second layer,
    (3*3*32 + 1) * 64 = 18,496.

    No softmax at the end: :class:`torch.nn.CrossEntropyLoss` applies log-softmax itself (Keras's
    ``Dense(10, activation='softmax')`` + ``categorical_crossentropy`` is the same maths split differently).
    Flatten note: Keras flattens channels-last (h, w, c), PyTorch channels-first (c, h, w); the numbers are
    ordered differently, the parameter counts are identical.

    Classic mistakes: a softmax layer in the model *and* CrossEntropyLoss (softmax applied twice: training
    crawls); forgetting the ReLUs (the stack collapses into one linear map); ``Linear(64 * 5 * 5, 64)`` or
    another wrong ``in_features`` (count the sizes above); ``padding='same'`` (keeps 28 -> 28 -> 14 -> ...).
    """
    raise NotImplementedError("convnet: replace this line with your code (convnet.build_convnet)")


def build_convnet_no_maxpool() -> nn.Module:
    """The book's counter-example: the same three convolutions (each + ReLU) with no pooling in between.

    ``(N, 1, 28, 28)`` -> ``(N, 32, 26, 26)`` -> ``(N, 64, 24, 24)`` -> ``(N, 64, 22, 22)``; parameters
    320 + 18,496 + 36,928 = 55,744 -- exactly the conv base of :func:`build_convnet`, because a convolution's
    parameter count does not depend on the image size. What changes is the output: 22 * 22 * 64 = 30,976
    numbers instead of 576, and the last layer's 3 x 3 windows only see 7 x 7 input pixels (without pooling
    the receptive field grows by just k - 1 = 2 pixels per layer), so the net cannot build a hierarchy of
    ever larger patterns and a dense layer on top would need 30,976 * 64 + 64 weights.
    """
    raise NotImplementedError("convnet: replace this line with your code (convnet.build_convnet_no_maxpool)")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (entries of tensors with ``requires_grad``), e.g. 93,322 for the convnet.

    A parameter tensor counts with all its entries: a ``Conv2d(32, 64, 3)`` holds a weight of shape
    (64, 32, 3, 3) = 18,432 entries and a bias of 64, i.e. (3*3*32 + 1) * 64 = 18,496. Frozen tensors
    (``requires_grad=False``) are not trainable and are not counted.
    """
    raise NotImplementedError("convnet: replace this line with your code (convnet.count_parameters)")


def summary(model: nn.Module, input_shape: tuple[int, ...] = IMAGE_SHAPE) -> str:
    """A Keras-style table of the layers as they run: name (type), output shape, parameter count, totals.

    Output shapes are channels first, as PyTorch computes them, with ``None`` for the batch axis:
    ``(None, 32, 26, 26)`` where Keras prints ``(None, 26, 26, 32)``. Activations such as ReLU have no
    parameters and do not change the shape, so they are folded into the row of the layer before them
    (Keras writes them as that layer's ``activation=``). For :func:`build_convnet`::

        _________________________________________________________________
        Layer (type)                 Output Shape              Param #
        =================================================================
        conv2d_1 (Conv2d+ReLU)       (None, 32, 26, 26)        320
        max_pool2d_1 (MaxPool2d)     (None, 32, 13, 13)        0
        conv2d_2 (Conv2d+ReLU)       (None, 64, 11, 11)        18496
        max_pool2d_2 (MaxPool2d)     (None, 64, 5, 5)          0
        conv2d_3 (Conv2d+ReLU)       (None, 64, 3, 3)          36928
        flatten_1 (Flatten)          (None, 576)               0
        linear_1 (Linear+ReLU)       (None, 64)                36928
        linear_2 (Linear)            (None, 10)                650
        =================================================================
        Total params: 93,322
        Trainable params: 93,322
        Non-trainable params: 0
        _________________________________________________________________

    The shapes come from running one all-zero image of ``input_shape`` through the model (no gradients,
    the model's train/eval mode is restored afterwards).
    """
    raise NotImplementedError("convnet: replace this line with your code (convnet.summary)")


def train(
    model: nn.Module,
    images: Any,
    labels: Any,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    recipe: str | Recipe = "fast",
    *,
    learning_rate: float | None = None,
    threads: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Train ``model`` in place on ``(images, labels)`` with mini-batch gradient descent; return its history.

    ``images``: ``(N, 28, 28)`` raw integer pixels or the float32 ``(N, 1, 28, 28)`` from :func:`preprocess`;
    ``labels``: ``(N,)`` digits. ``recipe`` names an entry of :data:`RECIPES` (or is a :class:`Recipe`);
    ``epochs``, ``batch_size`` and ``learning_rate`` override it when given. ``recipe="seed"`` is the book's
    ``model.fit(..., epochs=5, batch_size=64)`` with RMSprop; the default ``"fast"`` recipe reaches the same
    99 %+ in two passes (Adam, one-cycle learning rate, label smoothing). ``seed`` fixes the shuffling (the weights were already drawn when the model was
    built: call ``torch.manual_seed(seed)`` before :func:`build_convnet` for a fully repeatable run).
    ``threads`` sets torch's CPU threads for the duration of the call; by default the cores not already busy
    (the load average says how many are), at most torch's own setting, at least one. For a fixed seed and
    thread count the run is bitwise repeatable. The grader calls ``train(model, train_images, train_labels,
    seed=...)`` with the raw uint8 images, so the defaults are what gets graded.

    Returns ``{"loss": [...], "accuracy": [...], "seconds": float, "threads": int}``: the mean training loss
    and accuracy of each epoch, the wall-clock time and the threads used.

    One epoch is one pass over the shuffled data in batches; for each batch: forward pass -> cross-entropy
    loss on the logits -> ``optimizer.zero_grad()`` -> ``loss.backward()`` -> ``optimizer.step()``.
    Classic mistakes: forgetting ``zero_grad`` (gradients accumulate across batches); leaving the model in
    ``eval()`` mode; never shuffling (batches then arrive in the same order every epoch).
    """
    raise NotImplementedError("mnist_accuracy: replace this line with your code (convnet.train)")


def predict(model: nn.Module, images: Any, batch_size: int = 1000) -> np.ndarray:
    """Predicted digits, int64 ``(N,)``: the arg-max of the logits (given, not an exercise).

    ``images`` as for :func:`as_image_tensor`. Runs in ``eval()`` mode without autograd
    (``torch.inference_mode``) and in batches; the model's train/eval mode is restored afterwards.
    """
    x = as_image_tensor(images)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = [model(x[i:i + batch_size]).argmax(dim=1) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, np.int64)


def evaluate(model: nn.Module, images: Any, labels: Any) -> float:
    """Accuracy in [0, 1]: the share of ``images`` whose predicted digit equals ``labels`` (given)."""
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64).reshape(-1)
    pred = predict(model, images)
    if pred.shape != y.shape:
        raise ValueError(f"expected labels of shape {pred.shape} to match the images, got {y.shape}")
    return float((pred == y).mean()) if y.size else float("nan")
