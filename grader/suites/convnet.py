"""Hidden checks for the ``convnet`` exercise: the model's structure, sizes and the helpers around it.

The student's model never leaves the worker: the worker describes it (layers, parameters, output
shapes) and only that description is checked here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import Suite
from .outcomes import Fail, StudentRaised
from .cases import make_array
from .diagnosis import SEED_LAYER_TYPES, diagnose, with_diagnosis
from .tolerances import SCALED_IMAGES_ATOL

if TYPE_CHECKING:
    from .context import Context

suite = Suite("convnet")

#: The seed's model (Chollet, DLwP 5.1): trainable parameters of each layer that has some.
SEED_PARAMS = [("Conv2d", 320), ("Conv2d", 18_496), ("Conv2d", 36_928), ("Linear", 36_928), ("Linear", 650)]
SEED_CONV_OUTPUTS = [(2, 32, 26, 26), (2, 64, 11, 11), (2, 64, 3, 3)]
NO_POOL_PARAMS = 55_744


def describe(ctx: Context, builder: str) -> dict:
    try:
        return ctx.describe_model(builder, (2, 1, 28, 28))
    except StudentRaised as exc:
        raise Fail(f"{builder}() or its forward pass on a (2, 1, 28, 28) batch raised {exc.type_name}: {exc.message}") from None


@suite.check("build_convnet: five trainable layers with 320, 18,496, 36,928, 36,928 and 650 parameters", weight=1,
             concept="parameters")
def seed_parameters(ctx: Context) -> None:
    d = describe(ctx, "build_convnet")
    layers = [(l["type"], l["params"]) for l in d["layers"] if l["params"] > 0]
    if layers != SEED_PARAMS:
        hint = ""
        linear = [p for t, p in layers if t == "Linear"]
        if linear and linear[0] != 36_928:
            hint = " The first Dense layer should take 3*3*64 = 576 inputs: are both poolings there, and no padding?"
        raise Fail(f"trainable layers (type, parameters) are {layers}, expected {SEED_PARAMS}.{hint}")
    if d["trainable_params"] != 93_322:
        raise Fail(f"the model has {d['trainable_params']:,} trainable parameters, expected 93,322")


def _types_failure(ctx: Context, message: str, types: list) -> Fail:
    """``message`` plus the catalogue's mistakes confirmed on the model's layer types."""
    return with_diagnosis(Fail(message), diagnose(ctx, "convnet", (), {}, list(types), list(SEED_LAYER_TYPES)))


@suite.check("build_convnet: two 2x2 max-pooling layers", weight=1, concept="pooling")
def pooling(ctx: Context) -> None:
    types = [l["type"] for l in describe(ctx, "build_convnet")["layers"]]
    if types.count("MaxPool2d") != 2:
        raise Fail(f"expected 2 MaxPool2d layers, found {types.count('MaxPool2d')} (layers: {types})")


@suite.check("build_convnet: a ReLU after each conv layer and after the first Dense layer", weight=1, concept="activations")
def activations(ctx: Context) -> None:
    types = [l["type"] for l in describe(ctx, "build_convnet")["layers"]]
    if types.count("ReLU") < 4:
        raise _types_failure(ctx, f"build_convnet: expected a ReLU after each conv layer and after the first Dense layer (4 in "
                                  f"all), found {types.count('ReLU')} (layers: {types})", types)


@suite.check("build_convnet: returns logits (no softmax: CrossEntropyLoss applies it)", weight=1, concept="logits")
def logits(ctx: Context) -> None:
    types = [l["type"] for l in describe(ctx, "build_convnet")["layers"]]
    if "Softmax" in types or "LogSoftmax" in types:
        raise _types_failure(ctx, "build_convnet: the model ends in a softmax: return logits, CrossEntropyLoss applies the "
                                  f"softmax itself (layers: {types})", types)


@suite.check("build_convnet: feature maps 26x26x32 -> 11x11x64 -> 3x3x64, logits (N, 10)", weight=1, concept="shapes")
def seed_shapes(ctx: Context) -> None:
    d = describe(ctx, "build_convnet")
    convs = [tuple(l["output_shape"]) for l in d["layers"] if l["type"] == "Conv2d"]
    if convs != SEED_CONV_OUTPUTS:
        raise Fail(f"conv outputs are {convs}, expected {SEED_CONV_OUTPUTS} (3x3 kernels, no padding, 2x2 pooling between)")
    if tuple(d["output_shape"]) != (2, 10):
        raise Fail(f"the model returns shape {tuple(d['output_shape'])} for a batch of 2, expected (2, 10)")


@suite.check("build_convnet_no_maxpool: (N, 64, 22, 22) and 55,744 parameters", weight=1, concept="no_maxpool")
def no_maxpool(ctx: Context) -> None:
    d = describe(ctx, "build_convnet_no_maxpool")
    if tuple(d["output_shape"]) != (2, 64, 22, 22):
        raise Fail(f"output shape {tuple(d['output_shape'])}, expected (2, 64, 22, 22): three 3x3 convs take 28 to 26, 24, 22")
    if d["trainable_params"] != NO_POOL_PARAMS:
        raise Fail(f"{d['trainable_params']:,} trainable parameters, expected 55,744 (the conv base alone)")


@suite.check("count_parameters and summary report 93,322", weight=1, concept="counting")
def count_and_summary(ctx: Context) -> None:
    # counted against the student's own model (the worker's description of it): a model that differs from
    # the seed is the parameters check's business, not a reason to doubt a right count_parameters
    own = describe(ctx, "build_convnet")
    total = int(own["trainable_params"])
    layers = [int(l["params"]) for l in own["layers"] if l["params"] > 0]
    model = ctx.build("build_convnet")
    try:
        n = ctx.student("count_parameters", model)
    except StudentRaised as exc:
        raise Fail(f"count_parameters(build_convnet()) raised {exc.type_name}: {exc.message}") from None
    if n != total or isinstance(n, bool):
        raise Fail(f"count_parameters(build_convnet()) returned {n!r}, but your model has {total:,} trainable parameters"
                   f"{'' if total == 93_322 else ' (the seed has 93,322)'}: count p.numel() of every p with p.requires_grad")
    try:
        text = ctx.student("summary", model)
    except StudentRaised as exc:
        raise Fail(f"summary(build_convnet()) raised {exc.type_name}: {exc.message}") from None
    if not isinstance(text, str) or f"{total:,}" not in text:
        raise Fail(f"summary(build_convnet()) must return a string showing your model's total {total:,} (with the thousands separator)")
    for needed in layers:
        if f"{needed:,}" not in text and str(needed) not in text:
            raise Fail(f"summary(build_convnet()) does not show a layer with {needed:,} parameters")


@suite.check("preprocess: uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], int64 labels", weight=1, concept="preprocess")
def preprocess(ctx: Context) -> None:
    images = make_array((5, 28, 28), "uint8", 1)
    labels = np.array([3, 0, 9, 1, 7], dtype=np.uint8)
    try:
        got = ctx.student("preprocess", images, labels)
    except StudentRaised as exc:
        raise Fail(f"preprocess raised {exc.type_name}: {exc.message}") from None
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(g, np.ndarray) for g in got)):
        raise Fail("preprocess must return (images, labels) as two numpy arrays")
    x, y = got
    if x.shape != (5, 1, 28, 28) or x.dtype != np.float32:
        raise Fail(f"images came back as shape {x.shape} {x.dtype}, expected (5, 1, 28, 28) float32 (add the channel axis)")
    if not np.allclose(x[:, 0], images / 255.0, atol=SCALED_IMAGES_ATOL):
        raise Fail("images must be scaled to [0, 1] by dividing by 255 (check you did not divide an integer array in place)")
    if y.dtype != np.int64 or not np.array_equal(y, labels.astype(np.int64)):
        raise Fail(f"labels came back as {y.dtype} {y.tolist()}, expected int64 {labels.tolist()} (CrossEntropyLoss wants class indices)")
