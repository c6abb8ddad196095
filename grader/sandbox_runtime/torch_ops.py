"""Worker-side operations on the student's torch model; only plain data leaves this module.

* :func:`describe_model` builds the model, runs one forward pass on zeros with forward hooks on the
  leaf modules and returns layer names, types, parameter counts and output shapes.
* :func:`train_and_probe` builds and trains the model with the student's own ``train`` and returns its
  parameters and its logits on a few training images. No test image or label ever enters the worker.

The student's model object never crosses the boundary. Both run inside the sandbox.
"""
from __future__ import annotations

import random
import time
from types import ModuleType

import numpy as np
import torch


class InvalidModel(TypeError):
    """The student's builder, model or train returned something unusable."""


def _shape(out) -> list[int] | None:
    return [int(d) for d in out.shape] if isinstance(out, torch.Tensor) else None


def _own_params(m: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in m.parameters(recurse=False)))


def _build(mod: ModuleType, builder: str) -> torch.nn.Module:
    fn = mod.__dict__.get(builder)
    if not callable(fn):
        raise InvalidModel(f"{mod.__name__.replace('.', '/')}.py defines no function {builder!r}")
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise InvalidModel(f"{builder}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def describe_model(mod: ModuleType, builder: str, input_shape: list[int]) -> dict:
    """``{"layers": [{"name", "type", "params", "output_shape"}...], "trainable_params", "total_params",
    "output_shape"}`` for ``builder()``'s model on a zero input of ``input_shape``."""
    model = _build(mod, builder)
    leaves = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]
    seen: dict[str, list[int] | None] = {}
    order: list[str] = []
    hooks = []
    for name, m in leaves:
        def hook(module, inputs, output, name=name):
            if name not in seen:
                order.append(name)
            seen[name] = _shape(output)
        hooks.append(m.register_forward_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(tuple(int(d) for d in input_shape)))
    finally:
        for h in hooks:
            h.remove()
    by_name = dict(leaves)
    names = order + [n for n, _ in leaves if n not in seen]
    layers = [{"name": n, "type": type(by_name[n]).__name__, "params": _own_params(by_name[n]),
               "output_shape": seen.get(n)} for n in names]
    return {
        "layers": layers,
        "trainable_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "total_params": int(sum(p.numel() for p in model.parameters())),
        "output_shape": _shape(out),
    }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fan_ins(shapes: list[tuple[int, ...]]) -> list[int]:
    """Each tensor's fan-in as torch's default init counts it: a weight ``(out, *rest)`` has ``prod(rest)``;
    a bias (1-d) takes the fan-in of the weight before it (the layer it belongs to)."""
    fans: list[int] = []
    last = 1
    for shape in shapes:
        if len(shape) >= 2:
            last = max(1, int(np.prod(shape[1:])))
        fans.append(last)
    return fans


def initial_parameters(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    """The grader's initial parameters for tensors of ``shapes`` (in ``model.parameters()`` order) from ``seed``.

    Each tensor is drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the distribution of torch's default
    ``Conv2d``/``Linear`` init (kaiming_uniform with a=sqrt(5) for weights, the same bound for biases), by
    numpy's PCG64 from ``seed``: the same float32 arrays on the trusted side and in the worker, whatever
    torch's RNG or the student's builder did.
    """
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    out = []
    for shape, fan in zip(shapes, fan_ins(shapes)):
        bound = 1.0 / np.sqrt(fan)
        out.append(rng.uniform(-bound, bound, size=shape).astype(np.float32))
    return out


def _set_initial_parameters(model: torch.nn.Module, seed: int) -> None:
    """Overwrite ``model``'s parameters with :func:`initial_parameters` before the student's ``train`` runs
    (left as built when the model's parameters are not plain float tensors: the grader rejects it later)."""
    params = list(model.parameters())
    if not all(isinstance(p, torch.Tensor) and p.is_floating_point() for p in params):
        return
    values = initial_parameters([tuple(p.shape) for p in params], seed)
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(torch.from_numpy(v))


def _trained_values(model: torch.nn.Module, max_values: int) -> tuple[list[str], list[np.ndarray]]:
    """Names and float32 copies of ``model.parameters()``, in that order (at most ``max_values`` numbers)."""
    names = [str(name)[:200] for name, _ in model.named_parameters()]
    params = list(model.parameters())
    total = sum(int(p.numel()) for p in params)
    if total > max_values:
        raise InvalidModel(f"your model has {total:,} parameter values; the grader accepts at most {max_values:,} "
                           f"for this exercise")
    values = []
    for name, p in zip(names, params, strict=True):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise InvalidModel(f"parameter {name!r} is not a floating-point tensor ({getattr(p, 'dtype', type(p).__name__)})")
        values.append(np.ascontiguousarray(p.detach().cpu().to(torch.float32).contiguous().numpy()))
    return names, values


def train_and_probe(mod: ModuleType, train_images: np.ndarray, train_labels: np.ndarray, probe_images: np.ndarray,
                    *, epochs: int | None = None, seed: int = 0, threads: int | None = None,
                    max_values: int = 2_000_000, kwargs: dict | None = None) -> dict:
    """Train the student's ``build_convnet()`` with their ``train``; return what the grader scores.

    ``{"names": [...], "params": [float32 arrays in the order of model.parameters()], "probe_logits":
    float32 (P, 10) of the trained model in eval mode without gradients on ``probe_images`` (float32
    NCHW, chosen by the grader from the training set), "train_seconds": wall time of train(),
    "threads": torch threads at the start of train()}``. No test image ever enters the worker: the grader
    loads the parameters into its own reference model and scores that. ``threads`` (the grader's choice)
    sets torch's CPU threads before the student's code runs.
    """
    if threads:
        torch.set_num_threads(int(threads))
    _seed_everything(seed)
    model = _build(mod, "build_convnet")
    _set_initial_parameters(model, seed)  # the grader's init: the trusted side checks the result descends from it
    train = mod.__dict__.get("train")
    if not callable(train):
        raise InvalidModel(f"{mod.__name__.replace('.', '/')}.py defines no function 'train'")
    kw = dict(kwargs or {})
    kw["seed"] = seed
    if epochs is not None:
        kw["epochs"] = epochs
    used_threads = torch.get_num_threads()
    started = time.perf_counter()
    returned = train(model, train_images, train_labels, **kw)
    train_seconds = time.perf_counter() - started
    if isinstance(returned, torch.nn.Module):
        model = returned
    names, values = _trained_values(model, max_values)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(probe_images, dtype=np.float32)))
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise InvalidModel(f"the model's forward pass returned {type(logits).__name__}, not a float tensor of logits")
    return {"names": names, "params": values,
            "probe_logits": np.ascontiguousarray(logits.detach().cpu().to(torch.float32).numpy()),
            "train_seconds": float(train_seconds), "threads": int(used_threads)}
