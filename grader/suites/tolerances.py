"""Numeric tolerances of every hidden suite, in one place.

Student answers are compared with the reference in float64. A student who computes in float32
stays within the float32 row; anything looser is a wrong answer, not rounding.
"""
from __future__ import annotations

import numpy as np

#: (rtol, atol relative to the largest magnitude of the expected array)
FLOAT64 = (1e-6, 1e-6)
FLOAT32 = (1e-4, 1e-5)
#: The reference must match its independent oracle (grader/suites/oracles.py) this closely.
REFERENCE_VS_ORACLE = (1e-9, 1e-9)
#: ...and this closely when the reference computed in float32.
REFERENCE_VS_ORACLE_FLOAT32 = (1e-5, 1e-5)
#: convnet's preprocess: images scaled to [0, 1] (absolute: float32 rounding of x / 255).
SCALED_IMAGES_ATOL = 1e-6


def tolerance_for(dtype: np.dtype, scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) for comparing against an expected array of ``dtype`` whose max |value| is ``scale``."""
    rtol, atol = FLOAT32 if np.dtype(dtype) == np.float32 else FLOAT64
    return rtol, atol * max(scale, 1.0)

#: mnist_accuracy: the reference convnet loaded with the student's trained weights must reproduce the
#: student's own logits on the probe images this closely (rtol, atol relative to the largest |logit|):
#: float32 forward passes that differ only in thread count or memory layout agree far better than this.
MNIST_PROBE_LOGITS = (1e-3, 1e-4)

#: mnist_accuracy: every trained weight tensor must keep at least this Pearson correlation with the starting
#: weights the grader set (grader/suites/mnist_accuracy.py init_correlations; measured with
#: benchmarks/train_mnist.py: honest one-pass trainings keep far more, weights from another start ~0).
MNIST_INIT_CORRELATION = 0.2
