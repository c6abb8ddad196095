"""What a check sees: the student's functions behind the sandbox, the reference beside it."""
from __future__ import annotations

import importlib
import time
from typing import Any, Callable

import numpy as np

from coursekit.course import Course, Exercise
from coursekit.mistakes import RAISED, Case
from coursekit.numpy2_hints import with_numpy2_hint
from grader.sandbox.launcher import Build

from .compare import assert_array_matches
from .helper_calls import decode
from .messages import describe, explain_empty
from .outcomes import Fail, InternalError, NotImplementedYet, StudentRaised, WorkerStopped
from .tolerances import REFERENCE_VS_ORACLE, REFERENCE_VS_ORACLE_FLOAT32


class Context:
    """One exercise's view of the world during grading (trusted side)."""

    def __init__(self, worker: Any, exercise: Exercise, course: Course):
        self.worker = worker
        self.exercise = exercise
        self.course = course
        #: Informational lines a check adds to its result (e.g. the accuracy reached).
        self.notes: list[str] = []
        #: Figures the check measured (``TestResult.metrics``), e.g. the test accuracy.
        self.metrics: dict[str, float] = {}
        #: Every call of the student's functions this exercise made, by function, passed or failed: a diagnosis
        #: must explain all of them (coursekit.mistakes.settle). False once too much was kept to keep more.
        self.cases: dict[str, list[Case]] = {}
        self.cases_complete = True
        self._kept_values = 0
        #: Failures whose diagnosis is settled again once every check has run (grader.suites.diagnosis.settle).
        self.pending: list[Any] = []
        helpers = [course.exercise(d) for d in exercise.depends_on]
        self._watch = [(ex.module, ex.functions[0]) for ex in helpers if ex.functions]
        self.helper_functions = {f for _, f in self._watch}

    def note(self, line: str) -> None:
        self.notes.append(line)

    def metric(self, name: str, value: float) -> None:
        self.metrics[name] = float(value)

    # -- the student's side ----------------------------------------------------------------
    def _call(self, function: str, args: tuple, kwargs: dict):
        r = self.worker.call(self.exercise.module, function, args=list(args), kwargs=dict(kwargs),
                             **({"watch": self._watch} if self._watch else {}))
        self._record(function, args, kwargs, r)
        self._unwrap(r)
        return r

    #: How many array values the kept cases may hold (answers and arguments together) before keeping stops.
    MAX_KEPT_VALUES = 20_000_000

    def _record(self, function: str, args: tuple, kwargs: dict, r: Any) -> None:
        """Keep this call (arguments, answer or RAISED, the helper calls it made) for the diagnosis."""
        if r.status not in ("ok", "error") or not self.cases_complete:
            return
        answer = r.value if r.status == "ok" else RAISED
        size = sum(int(getattr(v, "size", 0) or 0) for v in (*args, *kwargs.values(), answer)
                   if isinstance(v, np.ndarray))
        size += sum(int(getattr(v, "size", 0) or 0) for v in (answer if type(answer) is tuple else ()))
        self._kept_values += size
        if self._kept_values > self.MAX_KEPT_VALUES:
            self.cases_complete = False
            return
        helpers = decode(getattr(r, "helpers", ()), self.helper_functions) if self.helper_functions else ()
        self.cases.setdefault(function, []).append(Case(tuple(args), dict(kwargs), answer, helpers))

    def last_case(self, function: str) -> Case | None:
        """The latest recorded call of ``function`` (the one a check just made)."""
        kept = self.cases.get(function)
        return kept[-1] if kept else None

    def student(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call the student's ``function`` in the worker; raises StudentRaised / WorkerStopped."""
        return self._call(function, args, kwargs).value

    def student_checked(self, function: str, *args: Any, **kwargs: Any) -> tuple[Any, tuple[str, ...]]:
        """Like :meth:`student`, also naming the input arrays the call modified in place (checked in the worker)."""
        r = self._call(function, args, kwargs)
        return r.value, tuple(r.mutated)

    def _unwrap(self, r: Any) -> Any:
        if r.status == "ok":
            return r.value
        if r.status == "not_implemented":
            raise NotImplementedYet(r.error.message if r.error is not None else "not implemented yet")
        if r.status == "error":
            raise StudentRaised(r.error.type, self._explained(r.error), r.error.traceback)
        raise WorkerStopped(r.status, r.error.message if r.error is not None else r.status)

    def _explained(self, error: Any) -> str:
        """The error's message (naming a known numpy 2 change when it is one); for an empty one, the
        student's raising line and their last printed lines."""
        if str(error.message).strip():
            return with_numpy2_hint(str(error.message))
        printed = ""
        try:  # the capture thread may still be reading the last writes: wait (0.2 s at most) until it settles
            for _ in range(10):
                time.sleep(0.02)
                now = str(getattr(self.worker, "stdout", "") or "")
                if now == printed:
                    break
                printed = now
        except Exception:  # noqa: BLE001  no captured output is no reason to fail
            pass
        return explain_empty(error.type, error.message, error.traceback, printed, self.course.student_package)

    @staticmethod
    def noncontiguous(array: np.ndarray) -> np.ndarray:
        """The same values as a strided (non-contiguous) view; the wire keeps that layout for the student."""
        wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]

    def build(self, builder: str) -> Any:
        """An argument that stands for ``<module>.<builder>()`` built inside the worker."""
        return Build(builder)

    def describe_model(self, builder: str, input_shape: tuple[int, ...]) -> dict:
        return self._unwrap(self.worker.describe_model(module=self.exercise.module, builder=builder, input_shape=input_shape))

    def train_and_probe(self, train_images: np.ndarray, train_labels: np.ndarray, probe_images: np.ndarray, *,
                        seed: int = 0, threads: int | None = None, max_values: int = 2_000_000) -> tuple[Any, float]:
        """Train the student's convnet in the worker on the training set only.

        Returns the worker's unvalidated reply (``names``, ``params``, ``probe_logits``, ``train_seconds``,
        ``threads``) and the wall time of the whole request as the launcher measured it.
        """
        r = self.worker.train_and_probe(module=self.exercise.module, train_images=train_images, train_labels=train_labels,
                                        probe_images=probe_images, seed=seed, threads=threads, max_values=max_values)
        return self._unwrap(r), float(r.duration_s or 0.0)

    # -- the trusted side ------------------------------------------------------------------
    def reference(self, function: str) -> Callable[..., Any]:
        module = importlib.import_module(f"{self.course.reference_package}.{self.exercise.module}")
        return getattr(module, function)

    def expected(self, function: str, oracle: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The reference's answer, cross-checked with an independent oracle."""
        ref = self.reference(function)(*args, **kwargs)
        want = oracle(*args, **kwargs)
        refs = ref if isinstance(ref, tuple) else (ref,)
        wants = want if isinstance(want, tuple) else (want,)
        if len(refs) != len(wants):
            raise InternalError(f"the reference {self.exercise.module}.{function} returns {len(refs)} values, its oracle {len(wants)}")
        for r, w in zip(refs, wants, strict=True):
            r64, w64 = np.asarray(r, dtype=np.float64), np.asarray(w, dtype=np.float64)
            rtol, atol = REFERENCE_VS_ORACLE_FLOAT32 if np.asarray(r).dtype == np.float32 else REFERENCE_VS_ORACLE
            scale = max(float(np.max(np.abs(w64), initial=0.0)), 1.0)
            if r64.shape != w64.shape or not np.allclose(r64, w64, rtol=rtol, atol=atol * scale):
                raise InternalError(f"the reference {self.exercise.module}.{function} disagrees with its oracle on {describe(args)[:300]}")
        return ref

    # -- one comparison --------------------------------------------------------------------
    def compare(self, function: str, args: tuple, kwargs: dict, expected: Any, *, what: str, inputs: str,
                hint: Callable[[np.ndarray, np.ndarray], str | None] | None = None) -> None:
        """Call the student, compare each returned array with ``expected``, check inputs untouched."""
        try:
            got, mutated = self.student_checked(function, *args, **kwargs)
        except StudentRaised as exc:
            raise Fail(f"{what} raised {exc.type_name}: {exc.message}\ncase: {inputs}", inputs=inputs) from None
        if isinstance(expected, tuple):
            if type(got) is not tuple or len(got) != len(expected):
                raise Fail(f"{what}: expected a tuple of {len(expected)} arrays, got {describe(got)[:200]}\ncase: {inputs}",
                           inputs=inputs)
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                assert_array_matches(g, e, what=f"{what} (item {i + 1} of the result)", inputs=inputs, hint=hint)
        else:
            assert_array_matches(got, expected, what=what, inputs=inputs, hint=hint)
        if mutated:
            raise Fail(f"{what}: your function changed its input ({', '.join(mutated)}) in place; work on a copy instead (np.pad, "
                       f"astype and arithmetic return new arrays)")

    def expect_value_error(self, function: str, *args: Any, why: str, **kwargs: Any) -> None:
        try:
            got = self.student(function, *args, **kwargs)
        except StudentRaised as exc:
            if exc.type_name == "ValueError":
                return
            raise Fail(f"{function} with {why} raised {exc.type_name}: {exc.message}; expected ValueError naming the shapes") from None
        raise Fail(f"{function} with {why} returned {describe(got)[:200]}; expected a ValueError")
