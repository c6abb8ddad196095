"""Worker-side operations on the student's torch model; only plain data leaves this module.

* :func:`describe_model` builds the model, runs one forward pass on zeros with forward hooks on the
  leaf modules and returns layer names, types, parameter counts and output shapes.
* :func:`train_and_predict` builds and trains the model with the student's own ``train`` and returns
  int64 predictions for the test images. The test labels never enter the worker.

The student's model object never crosses the boundary. Both run inside the sandbox.
"""
from __future__ import annotations

import random
from types import ModuleType

import numpy as np
import torch


class InvalidModel(TypeError):
    """The student's builder or predictor returned something unusable."""


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


def _as_numpy_labels(pred, n: int) -> np.ndarray:
    if isinstance(pred, torch.Tensor):
        pred = pred.detach().cpu().numpy()
    if type(pred) is not np.ndarray or pred.dtype.kind not in "iu" or pred.shape != (n,):
        desc = f"{type(pred).__name__} {getattr(pred, 'dtype', '')} {getattr(pred, 'shape', '')}".strip()
        raise InvalidModel(f"predictions must be an integer array of shape ({n},), got {desc}")
    return pred.astype(np.int64)


def train_and_predict(mod: ModuleType, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                      *, epochs: int | None = None, seed: int = 0, kwargs: dict | None = None,
                      batch_size: int = 1000) -> np.ndarray:
    """Train the student's ``build_convnet()`` with their ``train`` and predict ``test_images``.

    Prediction uses the student's ``predict(model, images)`` when the module has one, else the argmax
    of ``model(preprocess(batch, dummy_labels)[0])`` in batches, in eval mode without gradients.
    """
    _seed_everything(seed)
    model = _build(mod, "build_convnet")
    train = mod.__dict__.get("train")
    if not callable(train):
        raise InvalidModel(f"{mod.__name__.replace('.', '/')}.py defines no function 'train'")
    kw = dict(kwargs or {})
    kw["seed"] = seed
    if epochs is not None:
        kw["epochs"] = epochs
    returned = train(model, train_images, train_labels, **kw)
    if isinstance(returned, torch.nn.Module):
        model = returned
    n = len(test_images)
    predict = mod.__dict__.get("predict")
    if callable(predict):
        return _as_numpy_labels(predict(model, test_images), n)
    preprocess = mod.__dict__.get("preprocess")
    if not callable(preprocess):
        raise InvalidModel(f"{mod.__name__.replace('.', '/')}.py defines neither 'predict' nor 'preprocess'")
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = test_images[i:i + batch_size]
            x = preprocess(batch, np.zeros(len(batch), dtype=np.int64))
            if isinstance(x, tuple):
                x = x[0]
            logits = model(torch.as_tensor(x))
            preds.append(logits.argmax(dim=1))
    return _as_numpy_labels(torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64), n)
