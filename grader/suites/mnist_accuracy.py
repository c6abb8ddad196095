"""Hidden check for ``mnist_accuracy``: train the student's convnet in the sandbox, score it here.

MNIST's test labels are public, so nothing of the test set enters the worker and no student code
labels a test image. The worker gets the training set and :data:`PROBE_SIZE` training images chosen
here; it runs the student's ``build_convnet()`` and ``train(...)`` and sends back the trained
parameters (float32, in the order of ``model.parameters()``) and the model's logits on the probe.
On this side the parameters are loaded into the reference ``build_convnet()``; its forward pass must
reproduce the student's probe logits (``tolerances.MNIST_PROBE_LOGITS``), and then the *reference*
model with the student's weights is scored on the 10,000 test images in this process.

What this costs beside the training (issue 11: at most 5 s; measured on 2 shared cores, load 2-3):
the four MNIST files are read once per grading process (:func:`mnist_arrays`: 0.3-0.4 s, then nothing
until a file changes); the whole training request costs 0.08-0.17 s beyond ``train()`` itself, the
47 MB of raw uint8 training images through the pipe included (a mapped file could save less than
that); :func:`free_cores` samples for 0.2 s; the test set is scored channels-last on one thread in
batches of :data:`SCORE_BATCH`: 1.3 s for 10,000 images, against 2.0-4.1 s for an NCHW pass in batches
of 1000 on torch's default two threads (measured alternately). The largest remaining cost is importing
torch on this side, 2-3 s, paid by the first submission a process grades.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TYPE_CHECKING

import numpy as np

from grader.course_secret import course_secret, derive_seed

from ..resources import available_cpus
from .base import Suite
from .outcomes import Fail, StudentRaised
from .tolerances import MNIST_INIT_CORRELATION, MNIST_PROBE_LOGITS

if TYPE_CHECKING:
    from .context import Context

suite = Suite("mnist_accuracy")

PROBE_SIZE = 64
"""Training images on which the student's forward pass is compared with the reference's."""
PROBE_SEED = 2024  # any fixed number: the probe is the same for every student
MAX_VALUES = 1_500_000
"""The worker refuses to send back more parameter values than this (16x the reference's 93,322: room for a
variant, not for a giant reply); a fixed number, so that torch need not be imported here before training."""
SCORE_BATCH = 256
"""Test images per forward pass when scoring (measured on one thread: 128-256 best, 1000 ~25 % slower)."""
SCORE_THREADS = 1
"""Torch threads for scoring: two would save ~0.5 s on an idle 2-core machine but cost 1.5-10 s when another
job holds a core (two OpenMP threads wait on each other, see :func:`free_cores`)."""


@dataclass(frozen=True)
class Trained:
    """What the worker sent back, validated."""

    names: list[str]
    params: list[np.ndarray]
    probe_logits: np.ndarray
    train_seconds: float
    threads: int


_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}


def mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``load_mnist()``'s four arrays, read once per process and shared read-only between submissions.

    They are read again when the directory ``load_mnist`` resolves to, or the size, times or inode of
    one of its files, changes (a checksum verified once is not recomputed for the same file either).
    """
    from coursekit.course import MNIST_FILES
    from coursekit.mnist import gz_name, load_mnist, resolve_mnist_dir

    directory = resolve_mnist_dir()
    key = tuple((str(directory / gz_name(name)), *_stat_signature(directory / gz_name(name))) for name in MNIST_FILES)
    with _cache_lock:
        if _cache.get("key") != key:
            arrays = tuple(load_mnist(directory))
            for a in arrays:
                a.flags.writeable = False
            _cache.update(key=key, arrays=arrays)
        return _cache["arrays"]


def _stat_signature(path: os.PathLike) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def probe_indices(n_train: int, size: int = PROBE_SIZE) -> np.ndarray:
    """Sorted indices of the probe images among the training images (deterministic)."""
    return np.sort(np.random.default_rng(PROBE_SEED).choice(n_train, size=min(size, n_train), replace=False))


def probe_images(raw: np.ndarray) -> np.ndarray:
    """The probe as the model takes it: float32 NCHW in [0, 1], computed with numpy (no torch needed here)."""
    return np.divide(raw[:, None], np.float32(255.0), dtype=np.float32)


def free_cores(at_most: int, window_s: float = 0.2) -> int:
    """How many of our CPUs are idle right now (at least 1, at most ``at_most``): the training threads.

    On a busy machine two OpenMP threads wait on each other whenever one is descheduled (with the load
    average at ~5 on 2 cores a training step took ~4x longer with 2 threads than with 1), so training gets
    only the cores other processes leave free, sampled from /proc/stat over ``window_s`` (the 1-minute load
    average would still count a job that just finished); the load average is the fallback.
    """
    cpus = sorted(os.sched_getaffinity(0))

    def busy_and_total() -> tuple[int, int]:
        busy = total = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                    ticks = [int(v) for v in fields[:8]]
                    total += sum(ticks)
                    busy += sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
        return busy, total

    try:
        b0, t0 = busy_and_total()
        time.sleep(window_s)
        b1, t1 = busy_and_total()
        busy_cores = len(cpus) * (b1 - b0) / max(1, t1 - t0)
    except (OSError, ValueError, IndexError):
        try:
            busy_cores = os.getloadavg()[0]
        except OSError:
            busy_cores = 0.0
    return max(1, min(at_most, len(cpus) - int(busy_cores + 0.25)))


def validated(reply: Any, wall_s: float, n_probe: int) -> Trained:
    """The worker's reply checked field by field (it ran beside student code: trust nothing)."""
    def bad(why: str) -> Fail:
        return Fail(f"the trained model could not be read back from the sandbox: {why}")

    if type(reply) is not dict:
        raise bad(f"expected a dict, got {type(reply).__name__}")
    names, params, logits = reply.get("names"), reply.get("params"), reply.get("probe_logits")
    if type(names) is not list or type(params) is not list or len(names) != len(params) \
            or not all(type(n) is str for n in names):
        raise bad("parameter names and values do not match")
    for name, p in zip(names, params):
        if type(p) is not np.ndarray or p.dtype != np.float32:
            raise bad(f"parameter {name!r} is not a float32 array")
    if type(logits) is not np.ndarray or logits.dtype != np.float32:
        raise bad("the probe logits are not a float32 array")
    seconds = reply.get("train_seconds")
    seconds = float(seconds) if type(seconds) is float and 0.0 <= seconds <= wall_s else wall_s
    threads = reply.get("threads")
    threads = threads if type(threads) is int and 0 < threads < 10_000 else 0
    if logits.ndim != 2 or logits.shape[0] != n_probe:
        raise Fail(f"your trained model returns an output of shape {logits.shape} for {n_probe} images; "
                   f"expected logits of shape ({n_probe}, 10)")
    return Trained(names, params, logits, seconds, threads)


def load_into(reference: Any, trained: Trained) -> None:
    """Copy the student's parameters into ``reference`` (a torch model); Fail naming the first misfit."""
    import torch

    ref_named = list(reference.named_parameters())

    def kind(name: str) -> str:
        owner = name.rpartition(".")[0]
        try:
            return type(reference.get_submodule(owner)).__name__
        except AttributeError:
            return "?"

    theirs = f"{len(trained.params)} parameter tensors, {sum(p.size for p in trained.params):,} values"
    ours = f"{len(ref_named)} tensors, {sum(p.numel() for _, p in ref_named):,} values"
    for i, ((ref_name, ref_p), name, p) in enumerate(zip(ref_named, trained.names, trained.params)):
        if tuple(p.shape) != tuple(ref_p.shape):
            raise Fail(f"your trained model does not fit the course's convnet: parameter {i + 1} ({name!r} in your model) "
                       f"has shape {tuple(p.shape)} where the reference's {ref_name!r} ({kind(ref_name)}) has "
                       f"{tuple(ref_p.shape)}. Your model: {theirs}; the reference: {ours}.")
    if len(trained.params) != len(ref_named):
        if len(trained.params) > len(ref_named):
            extra = len(ref_named)
            what = (f"it has an extra parameter {extra + 1} ({trained.names[extra]!r}, shape "
                    f"{tuple(trained.params[extra].shape)})")
        else:
            missing = len(trained.params)
            what = (f"it lacks the reference's parameter {missing + 1} ({ref_named[missing][0]!r} of "
                    f"{kind(ref_named[missing][0])}, shape {tuple(ref_named[missing][1].shape)})")
        raise Fail(f"your trained model does not fit the course's convnet: {what}. Your model: {theirs}; the reference: {ours}.")
    for name, p in zip(trained.names, trained.params):
        if not np.isfinite(p).all():
            raise Fail(f"your trained parameter {name!r} holds NaN or infinite values: training diverged "
                       f"(learning rate too high? a loss on probabilities instead of logits?)")
    with torch.no_grad():
        for (_, ref_p), p in zip(ref_named, trained.params):
            ref_p.copy_(torch.from_numpy(np.array(p)))  # a writable copy of the wire's buffer


def init_correlations(initial: list[np.ndarray], trained: list[np.ndarray]) -> list[float]:
    """Pearson correlation between each weight tensor (2-d and up) as the grader initialised it and as trained.

    Gradient descent moves each weight from where it started; in one pass over MNIST it moves less than
    the spread of the initial values, so trained weights stay correlated with their own initialisation
    (measured in benchmarks/train_mnist.py), while weights trained from any other start are uncorrelated
    with it (|r| of the order of 1/sqrt(size)). Biases are left out: too few values to tell.
    """
    out = []
    for a, b in zip(initial, trained):
        if a.ndim < 2 or a.shape != b.shape:
            continue
        x = a.astype(np.float64).ravel() - float(a.mean())
        y = b.astype(np.float64).ravel() - float(b.mean())
        denom = float(np.sqrt((x @ x) * (y @ y)))
        out.append(float(x @ y) / denom if denom > 0 and np.isfinite(denom) else 0.0)
    return out


def _forward(reference: Any, x: Any, *, skip: frozenset[int] = frozenset(), flatten_channels_last: bool = False) -> Any:
    """The reference Sequential's forward pass, optionally with one classic mistake made on purpose."""
    import torch
    from torch import nn

    for i, layer in enumerate(reference.children()):
        if i in skip:
            continue
        if isinstance(layer, nn.Flatten) and flatten_channels_last and x.ndim == 4:
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        elif isinstance(layer, nn.ReLU):
            x = torch.relu(x)  # never in place: the variants share their inputs
        else:
            x = layer(x)
    return x


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    rtol, atol = MNIST_PROBE_LOGITS
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol * scale))


def mistakes(reference: Any) -> dict[str, Callable[[Any], Any]]:
    """Classic forward-pass mistakes, each as a recomputation on the reference with the same weights."""
    import torch
    from torch import nn

    children = list(reference.children())
    found: dict[str, Callable[[Any], Any]] = {
        "a softmax at the end of the model (return the logits: CrossEntropyLoss applies log-softmax itself, so the "
        "softmax is applied twice and training crawls)": lambda x: torch.softmax(_forward(reference, x), dim=1),
        "a log_softmax at the end of the model (return the raw logits: CrossEntropyLoss applies log-softmax itself)":
            lambda x: torch.log_softmax(_forward(reference, x), dim=1),
        "a ReLU after the last layer (the logits must be free to go negative)":
            lambda x: torch.relu(_forward(reference, x)),
        "the flatten in channels-last order (h, w, c) as Keras does; nn.Flatten on NCHW maps gives (c, h, w)":
            lambda x: _forward(reference, x, flatten_channels_last=True),
    }
    for i, layer in enumerate(children):
        if isinstance(layer, nn.ReLU) and i > 0:
            before = children[i - 1]
            found[f"no ReLU after {before!r}"] = lambda x, i=i: _forward(reference, x, skip=frozenset({i}))
    return found


def diagnose(reference: Any, probe: np.ndarray, theirs: np.ndarray) -> str:
    """Why the student's logits differ from the reference's with the same weights: a classic mistake only when
    its recomputation reproduces the student's logits *and* differs from the reference's, else the max |diff|."""
    import torch

    x = torch.from_numpy(probe)
    with torch.no_grad():
        ours = _forward(reference, x).numpy()
        if theirs.shape != ours.shape:
            return (f"your forward pass differs from the reference with the same weights: it returns shape "
                    f"{theirs.shape} for {len(probe)} images where the reference returns {ours.shape}")
        for what, mistake in mistakes(reference).items():
            guess = mistake(x).numpy()
            if _close(theirs, guess) and not _close(guess, ours):
                return f"your forward pass differs from the reference with the same weights: it computes {what}"
    diff = float(np.max(np.abs(theirs.astype(np.float64) - ours)))
    return (f"your forward pass differs from the reference with the same weights: max |diff| {diff:.3g} over the "
            f"{len(probe)} probe images (tolerance rtol {MNIST_PROBE_LOGITS[0]:g}, atol {MNIST_PROBE_LOGITS[1]:g} x the "
            f"largest logit); build_convnet must be the chapter's model: conv-relu-pool, conv-relu-pool, conv-relu, "
            f"flatten, dense-relu, dense, with no softmax")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then give back the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def accuracy_of(model: Any, images: np.ndarray, labels: np.ndarray, batch_size: int = SCORE_BATCH,
                threads: int = SCORE_THREADS) -> float:
    """Share of ``images`` (float32 NCHW) that ``model`` labels right: eval mode, no autograd, in batches.

    The weights are laid out channels-last for the pass (oneDNN's fast layout on CPU: about half the time
    of NCHW here; a one-channel NCHW batch already is channels-last) and put back afterwards.
    """
    import torch

    model.eval()
    right = 0
    model.to(memory_format=torch.channels_last)
    try:
        with torch.inference_mode(), torch_threads(threads):
            for i in range(0, len(images), batch_size):
                batch = torch.from_numpy(images[i:i + batch_size]).contiguous(memory_format=torch.channels_last)
                pred = model(batch).argmax(dim=1).numpy()
                right += int((pred == labels[i:i + batch_size]).sum())
    finally:
        model.to(memory_format=torch.contiguous_format)
    return right / len(images)


def submission_digest(ctx: Context) -> str:
    """The submission's content hash as grader.submission.prepare computes it (``Workspace.content_hash``, the
    gradebook's): the modules the worker sees, read here on the trusted side (the worker's view is read-only)."""
    import hashlib

    digest = hashlib.sha256()
    root = getattr(ctx.worker, "student_dir", None)
    package = getattr(ctx.worker, "package", None)
    package = package if isinstance(package, str) and package else ctx.course.student_package
    if isinstance(root, (str, os.PathLike)):
        for module in sorted(ctx.course.modules):
            path = Path(root) / package / f"{module}.py"
            if path.is_file():
                digest.update(module.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def training_seed(ctx: Context) -> int:
    """The seed of this submission's training (starting weights and shuffling): derived from the course secret,
    the exercise and the submission's content, so a regrade repeats it and no student can know it beforehand."""
    return derive_seed(course_secret(ctx.course), ctx.exercise.id, submission_digest(ctx))


def not_descended_message(correlations: list[float]) -> str:
    """What a student reads when the returned weights do not come from training the grader's starting weights."""
    return (f"the trained weights do not descend from the starting weights the grader gave your model: their "
            f"correlation with those starting weights is {min(correlations):.3f} in the least related layer, where "
            f"training the model train() is given keeps every layer above {MNIST_INIT_CORRELATION:g}. The grader sets "
            f"the model's starting weights itself (after build_convnet(), before train()) and scores only weights "
            f"trained from them: train the model you are given, in place, without re-initialising it, building or "
            f"returning another model, or loading weights. No points for this check; your instructor sees this "
            f"result and can look at it with you.")


@suite.check("test accuracy of your trained convnet (full marks from course.yml's full_marks_at)", weight=1)
def accuracy(ctx: Context) -> float:
    # torch (and the reference module, which imports it) is imported here only after training: ~150 MB of
    # this process that would otherwise add to the sandbox's peak while the student's model trains
    x_train, y_train, x_test, y_test = mnist_arrays()
    probe = probe_images(x_train[probe_indices(len(x_train))])
    cap = getattr(getattr(ctx.worker, "limits", None), "threads", None) or available_cpus()
    seed = training_seed(ctx)
    try:
        reply, wall_s = ctx.train_and_probe(x_train, y_train, probe, seed=seed, threads=free_cores(cap), max_values=MAX_VALUES)
    except StudentRaised as exc:
        raise Fail(f"building or training raised {exc.type_name}: {exc.message}") from None
    trained = validated(reply, wall_s, len(probe))
    close = getattr(ctx.worker, "close", None)
    if close is not None and suite.checks[-1].run is accuracy:  # the last use of the worker: free its memory first
        close()
    import torch

    preprocess = ctx.reference("preprocess")
    reference = ctx.reference("build_convnet")()
    load_into(reference, trained)
    reference.eval()
    with torch.no_grad():
        ours = reference(torch.from_numpy(probe)).numpy()
    if not _close(trained.probe_logits, ours):
        raise Fail(diagnose(reference, probe, trained.probe_logits))

    from grader.sandbox_runtime.torch_ops import initial_parameters  # imports torch: only when grading

    initial = initial_parameters([tuple(p.shape) for p in reference.parameters()], seed)
    correlations = init_correlations(initial, trained.params)
    ctx.metric("init_correlation", min(correlations, default=0.0))
    if min(correlations, default=0.0) < MNIST_INIT_CORRELATION:
        ctx.metric("not_from_grader_init", 1.0)  # for the instructor: insights and the JSON report show it
        raise Fail(not_descended_message(correlations))

    test_images, test_labels = preprocess(x_test, y_test)
    acc = accuracy_of(reference, test_images, test_labels)
    scale = ctx.course.mnist_scale
    share = scale.share(acc)
    threads = f" on {trained.threads} thread{'s' if trained.threads != 1 else ''}" if trained.threads else ""
    ctx.note(f"test accuracy {acc:.4f} (full marks from {scale.full_marks_at}, nothing below {scale.zero_below}); "
             f"training took {trained.train_seconds:.1f} s{threads}")
    ctx.metric("test_accuracy", acc)
    ctx.metric("train_seconds", wall_s)  # measured here: the sandbox's own figure is the student's to fake
    if share <= 0.0:
        raise Fail(f"test accuracy {acc:.4f} is below {scale.zero_below}: no points")
    return share
