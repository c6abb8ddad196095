"""Diagnoses and blame, shared by the hidden suites: a cause is stated only when it explains every case.

A failed comparison names a classic mistake (``coursekit.mistakes``) only when recomputing it with the
reference reproduces the student's answer on *every* case the exercise ran on that function, passed
cases included (``Context.cases``; the rule is ``coursekit.mistakes.settle``, shared with the self-checks).
Otherwise the answer is described (``coursekit.describe``: flipped, transposed, only the border differs,
dtype changed, ...), as the way it is wrong when the description holds on every failing case, else as a
fact about the case shown. A helper (course.yml ``depends_on``) is blamed only when the student's function
called it on that case (the worker records those calls) and its answer there is wrong; blame is a cause
("fix pad2d first") when that holds on every failing case. Every diagnosis is settled again after the
last check (:func:`settle`), so a cause never contradicts a check that ran later. Diagnosis lines come
after the failure and its case, each on its own line, never glued to an error's text.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Callable, TYPE_CHECKING

import numpy as np
from hypothesis import strategies as st

from coursekit import mistakes as catalogue
from coursekit.describe import differences
from coursekit.course import Course

from .base import Check, Suite, search_property
from .compare import assert_array_matches
from .messages import describe
from .outcomes import Fail, StudentRaised
from .helper_calls import Clipped
from .tolerances import FLOAT32

if TYPE_CHECKING:
    from .context import Context

#: The seed model's layer types, what the convnet suite compares a description with.
SEED_LAYER_TYPES = ("Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "Flatten",
                    "Linear", "ReLU", "Linear")


def reference_namespace(course: Course) -> SimpleNamespace:
    """Every exercise function of the reference package, by name (the 'correct implementation')."""
    return _reference_namespace(course.reference_package, tuple((ex.module, tuple(ex.functions)) for ex in course.exercises))


@lru_cache(maxsize=8)
def _reference_namespace(package: str, modules: tuple) -> SimpleNamespace:
    functions: dict[str, Any] = {"layer_types": SEED_LAYER_TYPES}
    for module_name, names in modules:
        module = importlib.import_module(f"{package}.{module_name}")
        for name in names:
            functions.setdefault(name, getattr(module, name))
    return SimpleNamespace(**functions)


def _same(a: Any, b: Any) -> bool:
    return catalogue.same(a, b, *FLOAT32)


class Diagnosis(list):
    """Ids stated as causes (a list, as the suites expect), with the message lines and how to settle them again."""

    def __init__(self, ids: list[str], lines: list[str], ctx: Context | None = None, function: str = "",
                 shown: catalogue.Case | None = None):
        super().__init__(ids)
        self.lines, self.ctx, self.function, self.shown = lines, ctx, function, shown


def _hints(ctx: Context, function: str, case: catalogue.Case) -> dict:
    """Exercise facts the describers may use: which outputs' windows overlap the padding (convolutions),
    which values of pad2d's output are padding."""
    if function == "pad2d":
        try:
            x, pad = np.asarray(case.args[0]), case.args[1]
            t, b, l, r = (pad,) * 4 if isinstance(pad, (int, np.integer)) else tuple(int(p) for p in pad)
            mask = np.ones((x.shape[-2] + t + b, x.shape[-1] + l + r), dtype=bool)
            mask[t:t + x.shape[-2], l:l + x.shape[-1]] = False
            return {"padding_mask": mask, "padding_text": "only the padding differs: the copy of x inside is right"}
        except Exception:  # noqa: BLE001
            return {}
    if function != "conv2d":
        return {}
    try:
        ref = reference_namespace(ctx.course)
        x, w = np.asarray(case.args[0]), np.asarray(case.args[1])
        stride, padding = case.kwargs.get("stride", 1), case.kwargs.get("padding", 0)
        pads = catalogue._explicit_pads(ref, x, w, stride, padding)
        if not any(pads):
            return {}
        ones = np.ones((1, 1) + x.shape[2:])
        inside = ref.conv2d(ref.pad2d(ones, pads), np.ones((1, 1) + w.shape[2:]), None, stride=stride, padding=0)
        return {"padding_mask": inside[0, 0] < w.shape[2] * w.shape[3] - 0.5}
    except Exception:  # noqa: BLE001  no hint is no reason to fail
        return {}


def _value_text(value: Any) -> str:
    """One line: small numbers as they are, an array by its shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} {value.dtype}"
    if isinstance(value, Clipped):
        return value.what
    return describe(value)[:200]


def _arg_text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"x of shape {value.shape}"
    if isinstance(value, Clipped):
        return value.what
    return repr(value)[:60]


def _wrong_helpers(ctx: Context, case: catalogue.Case) -> list[tuple[str, str]]:
    """(helper, fact) for each helper call the student's function made on ``case`` that is wrong there."""
    ref = reference_namespace(ctx.course)
    found: list[tuple[str, str]] = []
    for call in case.helpers:
        if not call.checkable:
            continue
        try:
            want = getattr(ref, call.function)(*call.args, **call.kwargs)
        except Exception:  # noqa: BLE001  arguments the helper must reject: the caller's fault, not the helper's
            continue
        if call.raised is None and _same(call.value, want) and not _dtype_differs(call.value, want):
            continue
        shown = f"raised {call.raised}" if call.raised else f"returned {_value_text(call.value)}"
        how = [] if call.raised else differences(call.value, want)
        text = (f"your {call.function}({', '.join([_arg_text(a) for a in call.args] + [f'{k}={_arg_text(v)}' for k, v in call.kwargs.items()])}) "
                f"{shown}, expected {_value_text(want)}" + (f" ({how[0].text})" if how else ""))
        if (call.function, text) not in found:
            found.append((call.function, text))
    return found


def _dtype_differs(got: Any, want: Any) -> bool:
    return isinstance(got, np.ndarray) and isinstance(want, np.ndarray) and got.dtype != want.dtype


def verdict(ctx: Context, function: str, shown: catalogue.Case) -> tuple[list[str], list[str]]:
    """(message lines, ids stated as causes) for the failing call ``shown``, given every case kept so far."""
    ref = reference_namespace(ctx.course)
    cases = ctx.cases.get(function, []) if ctx is not None else []
    complete = ctx.cases_complete if ctx is not None else True
    wrong_here = _wrong_helpers(ctx, shown) if shown.helpers else []
    if wrong_here:
        failing = [c for c in cases if _fails(c, function, ref)] or [shown]
        for helper_name, fact in wrong_here:
            if complete and all(any(h == helper_name for h, _ in _wrong_helpers(ctx, c)) for c in failing):
                return ([f"{fact}: {ctx.exercise.id} relies on it, and your {helper_name} is wrong on every failing case "
                         f"({len(failing)}): fix {helper_name} first [blame.{helper_name}]"], [f"blame.{helper_name}"])
    asked = _wrong_questions(ctx, function, shown)
    if asked and not wrong_here:
        failing = [c for c in cases if _fails(c, function, ref)] or [shown]
        helper_name, fact = asked[0]
        if complete and len(failing) > 1 and all(any(h == helper_name for h, _ in _wrong_questions(ctx, function, c))
                                                 for c in failing):
            every = f"How your answer differs, on every failing case ({len(failing)}): your {function} calls {helper_name} with arguments that do not give what this case needs"
            return [f"{every}; here {fact}."], []
    found = catalogue.settle(function, ref, cases, shown, same=_same, hints_for=lambda c: _hints(ctx, function, c),
                             complete=complete)
    lines = [f"On this case {fact}." for _, fact in (wrong_here or asked)[:2]] + found.lines()
    return lines, found.ids


def _wrong_questions(ctx: Context, function: str, case: catalogue.Case) -> list[tuple[str, str]]:
    """(helper, fact) for right helper calls whose answer is not one this convolution case needs: the
    student's function called a correct helper with the wrong arguments (e.g. same_padding without the stride)."""
    if function not in ("conv2d", "conv2d_backward") or not case.helpers:
        return []
    try:
        ref = reference_namespace(ctx.course)
        x, w = (case.args[0], case.args[1]) if function == "conv2d" else (case.args[1], case.args[2])
        (h, wd), (kh, kw) = np.shape(x)[2:], np.shape(w)[2:]
        stride, padding = case.kwargs.get("stride", 1), case.kwargs.get("padding", 0)
        sh, sw = catalogue._pair(stride)
        pads = catalogue._explicit_pads(ref, np.asarray(x), np.asarray(w), stride, padding)
        needs = {"same_padding": {(pads[0], pads[1]): f"same_padding({h}, {kh}, {sh})",
                                  (pads[2], pads[3]): f"same_padding({wd}, {kw}, {sw})"} if padding == "same" else {},
                 "conv_output_size": {ref.conv_output_size(h + pads[0] + pads[1], kh, sh): "the output height",
                                      ref.conv_output_size(wd + pads[2] + pads[3], kw, sw): "the output width"}}
    except Exception:  # noqa: BLE001
        return []
    found: list[tuple[str, str]] = []
    for call in case.helpers:
        wanted = needs.get(call.function)
        if not wanted or call.raised or not call.checkable:
            continue
        try:
            value = getattr(ref, call.function)(*call.args, **call.kwargs)
        except Exception:  # noqa: BLE001
            continue
        key = tuple(value) if isinstance(value, (tuple, list)) else value
        if key in wanted:
            continue
        shown = ", ".join([_arg_text(a) for a in call.args] + [f"{k}={_arg_text(v)}" for k, v in call.kwargs.items()])
        need = " or ".join(f"{v} = {k}" for k, v in wanted.items())
        fact = f"your {function} called {call.function}({shown}), which rightly gives {key}, but this case needs {need}"
        if (call.function, fact) not in found:
            found.append((call.function, fact))
    return found


def _fails(case: catalogue.Case, function: str, ref: Any) -> bool:
    try:
        right = case.expected_of(function, ref)
    except catalogue.NotApplicable:
        return False
    return case.answer is catalogue.RAISED or not _same(case.answer, right)


def diagnose(ctx: Context, exercise: str, args: tuple, kwargs: dict, got: Any, expected: Any) -> Diagnosis:
    """What may be said of this failing call (never raises: a diagnosis is a bonus). The call is the one
    the check just made when it is the latest kept; otherwise (the convnet's layer types) it stands alone."""
    try:
        last = ctx.last_case(exercise)
        shown = last if last is not None and last.answer is got else catalogue.Case(tuple(args), dict(kwargs), got)
        if shown is not last:
            shown.expected = ("ok", expected)
        lines, ids = verdict(ctx, exercise, shown)
        return Diagnosis(ids, lines, ctx, exercise, shown)
    except Exception:  # noqa: BLE001  a strange answer gets no diagnosis, never a crash
        return Diagnosis([], [])


def with_diagnosis(failure: Fail, ids: list[str], blame: list[tuple[str, str]] = ()) -> Fail:
    """``failure`` followed by the diagnosis, each on its own line (and kept to be settled again at the end)."""
    if isinstance(ids, Diagnosis):
        lines = list(ids.lines)
    else:
        lines = [text for _, text in blame]
        text = catalogue.explain([catalogue.BY_ID[i] for i in ids if i in catalogue.BY_ID])
        if text:
            lines.append(text)
    base = str(failure)
    new = Fail("\n".join([base, *lines]), expected=failure.expected, got=failure.got, inputs=failure.inputs,
               mistakes=list(failure.mistakes) + [i for i, _ in blame] + list(ids))
    if isinstance(ids, Diagnosis) and ids.ctx is not None and ids.shown is not None:
        ids.ctx.pending.append(Pending(ids.function, ids.shown, base, str(new), list(ids)))
    return new


@dataclass
class Pending:
    """A failure whose diagnosis is settled again after the last check (see :func:`settle`)."""
    function: str
    shown: catalogue.Case
    base: str
    message: str
    ids: list[str]


def settle(ctx: Context, tests: list) -> None:
    """Re-state each failure's diagnosis with every case the exercise ran (later checks included), in place.

    Called by the grading loop once every check has run; never raises."""
    for pending in ctx.pending:
        try:
            lines, ids = verdict(ctx, pending.function, pending.shown)
            message = "\n".join([pending.base, *lines])
            if message == pending.message:
                continue
            for t in tests:
                if not t.passed and pending.message in (t.message or ""):
                    t.message = t.message.replace(pending.message, message, 1)
                    if t.detail is not None and isinstance(t.detail.get("mistakes"), list):
                        kept = [m for m in t.detail["mistakes"] if m not in pending.ids]
                        t.detail["mistakes"] = kept + [i for i in ids if i not in kept]
                    break
        except Exception:  # noqa: BLE001  a diagnosis is a bonus: the failure stands as it is
            continue


def compare(ctx: Context, exercise: str, args: tuple, kwargs: dict, expected: Any, *, what: str, inputs: str,
            sent: tuple | None = None, items: tuple[int, ...] | None = None, diagnosed: bool = True) -> None:
    """Call the student's ``exercise`` function with ``sent`` (default ``args``) and compare with ``expected``.

    ``items`` compares only those items of a tuple result. Whether the inputs come back untouched is the
    no-mutation check's (``untouched.py``), so that a mutation costs that concept alone.
    """
    try:
        got, _ = ctx.student_checked(exercise, *(sent if sent is not None else args), **kwargs)
    except StudentRaised as exc:
        failure = Fail(f"{what} raised {exc.type_name}: {exc.message}\ncase: {inputs}", inputs=inputs)
        if not diagnosed:
            raise failure from None
        raise with_diagnosis(failure, diagnose(ctx, exercise, args, kwargs, catalogue.RAISED, expected)) from None
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
        raise with_diagnosis(failure, diagnose(ctx, exercise, args, kwargs, got, expected)) from None


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
