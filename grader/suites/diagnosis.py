"""Comparisons with confirmed diagnoses and blame, shared by the hidden suites.

A failed comparison names a classic mistake (``coursekit.mistakes``) only when recomputing it with
the reference reproduces the student's output and differs from the right one. When the exercise
depends on others (course.yml ``depends_on``), the student's own helpers are called on the sub-case
and a wrong one is named ("your pad2d gives ... here; fix pad2d first"). The dependent check still
fails: only its concept's points are lost.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any, Callable, TYPE_CHECKING

import numpy as np
from hypothesis import strategies as st

from coursekit import mistakes as catalogue
from coursekit.course import Course

from .base import Check, Suite, search_property
from .compare import assert_array_matches
from .messages import describe
from .outcomes import Fail, StudentRaised
from .cases import pair
from .tolerances import FLOAT32

if TYPE_CHECKING:
    from .context import Context

#: The seed model's layer types, what the convnet suite compares a description with.
SEED_LAYER_TYPES = ("Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "Flatten",
                    "Linear", "ReLU", "Linear")


def reference_namespace(course: Course) -> SimpleNamespace:
    """Every exercise function of the reference package, by name (the 'correct implementation')."""
    functions: dict[str, Any] = {"layer_types": SEED_LAYER_TYPES}
    for ex in course.exercises:
        module = importlib.import_module(f"{course.reference_package}.{ex.module}")
        for name in ex.functions:
            functions.setdefault(name, getattr(module, name))
    return SimpleNamespace(**functions)


def _same(a: Any, b: Any) -> bool:
    return catalogue.same(a, b, *FLOAT32)


def diagnose(ctx: Context, exercise: str, args: tuple, kwargs: dict, got: Any, expected: Any) -> list[str]:
    """Ids of the mistakes confirmed on this call (never raises: a diagnosis is a bonus)."""
    try:
        found = catalogue.diagnose(exercise, reference_namespace(ctx.course), args, kwargs, got, expected, same=_same)
    except Exception:  # noqa: BLE001  a strange answer gets no diagnosis, never a crash
        return []
    return [m.id for m in found]


def with_diagnosis(failure: Fail, ids: list[str], blame: list[tuple[str, str]] = ()) -> Fail:
    """``failure`` with the confirmed mistakes' messages (first) and the blamed helpers added."""
    lines = [text for _, text in blame]
    text = catalogue.explain([catalogue.BY_ID[i] for i in ids if i in catalogue.BY_ID])
    if text:
        lines.append(text)
    if not lines:
        return failure
    message = str(failure)
    what, _, rest = message.partition(": ")
    joined = "\n".join(lines)
    new = f"{what}: {joined}\n{rest}" if rest else f"{message}\n{joined}"
    return Fail(new, expected=failure.expected, got=failure.got, inputs=failure.inputs,
                mistakes=list(failure.mistakes) + [i for i, _ in blame] + ids)


def compare(ctx: Context, exercise: str, args: tuple, kwargs: dict, expected: Any, *, what: str, inputs: str,
            sent: tuple | None = None, items: tuple[int, ...] | None = None, mutation: bool = False,
            diagnosed: bool = True, blame: Callable[[Any], list[tuple[str, str]]] | None = None) -> None:
    """Call the student's ``exercise`` function with ``sent`` (default ``args``) and compare with ``expected``.

    ``items`` compares only those items of a tuple result. ``mutation`` checks only that the inputs
    come back untouched (the no-mutation concept), not the values: mutation costs that concept alone.
    """
    try:
        got, mutated = ctx.student_checked(exercise, *(sent if sent is not None else args), **kwargs)
    except StudentRaised as exc:
        failure = Fail(f"{what} raised {exc.type_name}: {exc.message}\ncase: {inputs}", inputs=inputs)
        raise (with_diagnosis(failure, [], _safe_blame(blame, None)) if diagnosed else failure) from None
    if mutation:  # the no-mutation concept: whether the inputs came back untouched, from an answer of the right shape
        if not _shaped_like(got, expected):
            raise Fail(f"{what}: returned {describe(got)[:200]}, not an answer of the expected shape, so keeping the input "
                       f"untouched earns nothing yet\ncase: {inputs}", inputs=inputs)
        if not _answer_earns_credit(ctx, exercise, args, kwargs, got, expected, items) and not _safe_blame(blame, got):
            raise Fail(f"{what}: keeping the input untouched is credited only with an answer that is right, or wrong by a "
                       f"named classic mistake or a wrong helper, and this one is neither\ncase: {inputs}", inputs=inputs)
        if mutated:
            raise Fail(f"{what}: {catalogue.INPUT_MUTATED_MESSAGE} (changed: {', '.join(mutated)})\ncase: {inputs}",
                       inputs=inputs, mistakes=[catalogue.INPUT_MUTATED])
        return
    try:
        if isinstance(expected, tuple):
            if type(got) is not tuple or len(got) != len(expected):
                raise Fail(f"{what}: expected a tuple of {len(expected)} arrays, got {describe(got)[:200]}\ncase: {inputs}",
                           inputs=inputs)
            for i in items if items is not None else range(len(expected)):
                assert_array_matches(got[i], expected[i], what=f"{what} (item {i + 1} of the result)", inputs=inputs)
        else:
            assert_array_matches(got, expected, what=what, inputs=inputs)
    except Fail as failure:
        if not diagnosed:
            raise
        blamed = _safe_blame(blame, got)
        # a wrong helper is the cause to fix first: its consequences are not diagnosed as separate mistakes
        ids = [] if blamed else diagnose(ctx, exercise, args, kwargs, got, expected)
        raise with_diagnosis(failure, ids, blamed) from None


def _answer_earns_credit(ctx: Context, exercise: str, args: tuple, kwargs: dict, got: Any, expected: Any,
                         items: tuple[int, ...] | None) -> bool:
    """Right, or wrong only by a confirmed classic mistake: an answer that is more than garbage of the right shape."""
    try:
        if isinstance(expected, tuple):
            for i in items if items is not None else range(len(expected)):
                assert_array_matches(got[i], expected[i], what="answer", inputs="")
        else:
            assert_array_matches(got, expected, what="answer", inputs="")
        return True
    except Fail:
        return bool(diagnose(ctx, exercise, args, kwargs, got, expected))


def _shaped_like(got: Any, expected: Any) -> bool:
    if isinstance(expected, tuple):
        return type(got) is tuple and len(got) == len(expected) and all(_shaped_like(g, e) for g, e in zip(got, expected, strict=True))
    return type(got) is np.ndarray and got.shape == np.shape(expected)


def _safe_blame(blame, got) -> list[tuple[str, str]]:
    if blame is None:
        return []
    try:
        return blame(got)
    except Exception:  # noqa: BLE001  blame is a bonus
        return []


def property_check(suite: Suite, name: str, strategy: st.SearchStrategy, *, concept: str, weight: float = 1.0,
                   max_examples: int = 60):
    """Like ``Suite.property``; the function takes ``(ctx, case, diagnosed)``. Hypothesis searches and shrinks
    without diagnosing (fast); the smallest failing case is then run once more with the diagnosis."""

    def deco(fn: Callable[[Any, Any, bool], None]):
        def run(ctx: Context) -> None:
            last: list[Any] = []

            def quiet(ctx: Context, case) -> None:
                last[:] = [case]
                fn(ctx, case, False)

            try:
                search_property(ctx, strategy, quiet, max_examples, key=f"{suite.exercise_id}/{name}")
            except Fail:
                if not last:
                    raise
                try:
                    fn(ctx, last[0], True)
                except Fail as loud:
                    raise Fail(f"smallest failing case found: {loud}", expected=loud.expected, got=loud.got,
                               inputs=loud.inputs, mistakes=loud.mistakes) from None
                raise

        suite.checks.append(Check(name, weight, run, concept))
        return fn

    return deco


# ---------------------------------------------------------------------------------------------
# Blame: the student's own helpers on the sub-case
# ---------------------------------------------------------------------------------------------
def helper(ctx: Context, exercise_id: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """(status, value) of the student's ``exercise_id`` function on these arguments (status "ok", "error", ...)."""
    ex = ctx.course.exercise(exercise_id)
    r = ctx.worker.call(ex.module, ex.functions[0], args=list(args), kwargs=dict(kwargs))
    return r.status, (r.value if r.status == "ok" else None)


def _call_text(function: str, args: tuple) -> str:
    return f"{function}({', '.join(repr(a) if not isinstance(a, np.ndarray) else f'x of shape {a.shape}' for a in args)})"


def conv_helpers_blame(ctx: Context, x: np.ndarray, w: np.ndarray, stride: Any, padding: Any) -> list[tuple[str, str]]:
    """The student's pad2d / same_padding / conv_output_size (those in ``depends_on``) on this conv case.

    Each one that gives a wrong answer, or raises, here is named: (mistake id, message).
    """
    ref = reference_namespace(ctx.course)
    deps = ctx.exercise.depends_on
    (h, wd), (kh, kw) = x.shape[2:], w.shape[2:]
    sh, sw = pair(stride)
    blamed: list[tuple[str, str]] = []

    def check(dep: str, args: tuple, want: Any) -> None:
        status, got = helper(ctx, dep, *args)
        ok = status == "ok"
        if (ok and _same(got, want)) or status not in ("ok", "error"):  # right, a stub, or the worker stopped
            return
        shown = describe(got)[:200] if ok else "an error"
        if isinstance(want, np.ndarray):
            shown = describe(got)[:120] if ok and not isinstance(got, np.ndarray) else (
                f"a wrong array of shape {np.shape(got)}" if ok else "an error")
            want_text = f"an array of shape {want.shape}"
        else:
            want_text = repr(want)
        blamed.append((f"blame.{dep}", f"your {_call_text(dep, args)} gives {shown} here, expected {want_text}; "
                                       f"{ctx.exercise.id} relies on it: fix {dep} first"))

    if padding == "same" and "same_padding" in deps:
        check("same_padding", (h, kh, sh), tuple(ref.same_padding(h, kh, sh)))
        if (wd, kw, sw) != (h, kh, sh):
            check("same_padding", (wd, kw, sw), tuple(ref.same_padding(wd, kw, sw)))
    pads = catalogue._explicit_pads(ref, x, w, stride, padding)
    if any(pads) and "pad2d" in deps:
        check("pad2d", (x, pads), ref.pad2d(x, pads))
    if "conv_output_size" in deps:
        hp, wp = h + pads[0] + pads[1], wd + pads[2] + pads[3]
        check("conv_output_size", (hp, kh, sh), ref.conv_output_size(hp, kh, sh))
        if (wp, kw, sw) != (hp, kh, sh):
            check("conv_output_size", (wp, kw, sw), ref.conv_output_size(wp, kw, sw))
    return blamed
