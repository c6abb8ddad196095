"""Hidden check for ``mnist_accuracy``: train the student's convnet in the sandbox, score it here.

The worker receives the training set and the test *images*; the test labels stay on this side
and the predictions it sends back are scored against them.
"""
from __future__ import annotations

import numpy as np

from .base import Fail, StudentRaised, Suite

suite = Suite("mnist_accuracy")


@suite.check("test accuracy of your trained convnet (full marks from course.yml's full_marks_at)", weight=1)
def accuracy(ctx) -> float:
    from coursekit.mnist import load_mnist

    x_train, y_train, x_test, y_test = load_mnist()
    try:
        predictions = ctx.train_and_predict(x_train, y_train, x_test)
    except StudentRaised as exc:
        raise Fail(f"training or prediction raised {exc.type_name}: {exc.message}") from None
    if not isinstance(predictions, np.ndarray) or predictions.shape != (len(x_test),) or predictions.dtype.kind not in "iu":
        got = f"shape {predictions.shape} {predictions.dtype}" if isinstance(predictions, np.ndarray) else type(predictions).__name__
        raise Fail(f"expected one integer class per test image ({len(x_test)},), got {got}")
    acc = float(np.mean(predictions == y_test))
    scale = ctx.course.mnist_scale
    share = scale.share(acc)
    ctx.note(f"test accuracy {acc:.4f} (full marks from {scale.full_marks_at}, nothing below {scale.zero_below})")
    if share <= 0.0:
        raise Fail(f"test accuracy {acc:.4f} is below {scale.zero_below}: no points")
    return share
