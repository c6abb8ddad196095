"""Load and validate ``course.yml``: the single source of exercise ids, points and limits.

Everything that grades, releases or self-checks reads the course through :func:`load_course`;
nothing else parses the YAML. A malformed file raises :class:`CourseConfigError` whose message
names the offending key and what was expected.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: The course.yml that ships with this package (the repository root, or a release's root).
DEFAULT_COURSE_FILE = Path(__file__).resolve().parent.parent / "course.yml"

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: The exercise that trains the convnet on MNIST (course.yml's id): its suite trains, the Gradescope
#: leaderboard and the insights read its accuracy, the kit's README says the notebook checks it.
MNIST_EXERCISE = "mnist_accuracy"


class CourseConfigError(ValueError):
    """course.yml is missing, unreadable or does not match the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A top-level import name (``numpy``, ``scipy``, ``torch``), as course.yml's ``allowed_packages`` lists them.
PackageName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Limits(_Strict):
    time_limit_s: float = Field(gt=0, le=24 * 3600)
    memory_limit_mb: int = Field(gt=0, le=1024 * 1024)
    forbidden_imports: tuple[str, ...] = ()
    forbidden_calls: tuple[str, ...] = ()
    #: Top-level packages (import names) a worker may see, with the distributions they require;
    #: ``forbidden_imports`` subtracts from them (a forbidden package or subpackage is absent).
    allowed_packages: tuple[PackageName, ...] = ("numpy",)
    #: Size limit of one student module, in KB: a module holds code, not data or trained weights.
    max_module_kb: float = Field(default=64, gt=0, le=100 * 1024)


class Exercise(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    module: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    functions: tuple[str, ...] = Field(min_length=1)
    points: float = Field(ge=0)
    bonus: bool = False
    time_limit_s: float | None = Field(default=None, gt=0, le=24 * 3600)
    memory_limit_mb: int | None = Field(default=None, gt=0)
    forbidden_imports: tuple[str, ...] | None = None
    forbidden_calls: tuple[str, ...] | None = None
    allowed_packages: tuple[PackageName, ...] | None = None
    max_module_kb: float | None = Field(default=None, gt=0, le=100 * 1024)
    #: Graded after the other exercises, one at a time, with every free core (a training run).
    runs_alone: bool = False
    #: Points per concept the suite's checks grade (sum = points): one mistake costs its concept only.
    concepts: dict[str, float] | None = None
    #: Exercises whose functions this one uses (the student's own): a failure there is blamed by name.
    depends_on: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _concepts_sum_to_points(self) -> "Exercise":
        if self.concepts is not None:
            if any(v < 0 for v in self.concepts.values()):
                raise ValueError(f"{self.id}: concept points must be >= 0, got {self.concepts}")
            if abs(sum(self.concepts.values()) - self.points) > 1e-9:
                raise ValueError(f"{self.id}: concepts {self.concepts} sum to {sum(self.concepts.values()):g}, "
                                 f"not to the exercise's {self.points:g} points")
        return self


class Data(_Strict):
    mnist_dir: str | None = None
    mnist_url: str | None = None
    mnist_sha256: dict[str, str]

    @field_validator("mnist_sha256")
    @classmethod
    def _all_four(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [f for f in MNIST_FILES if f not in v]
        if missing:
            raise ValueError(f"needs a checksum for each MNIST file; missing {missing}")
        for name, digest in v.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{name}: expected 64 lowercase hex digits (SHA-256), got {digest!r}")
        return v


class MnistScale(_Strict):
    full_marks_at: float = Field(gt=0, le=1)
    zero_below: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> "MnistScale":
        if self.zero_below >= self.full_marks_at:
            raise ValueError("zero_below must be smaller than full_marks_at")
        return self

    def share(self, accuracy: float) -> float:
        """Fraction of the points earned for a test accuracy (linear between the two marks)."""
        if not accuracy == accuracy:  # NaN earns nothing
            return 0.0
        if accuracy >= self.full_marks_at:
            return 1.0
        if accuracy < self.zero_below:
            return 0.0
        return (accuracy - self.zero_below) / (self.full_marks_at - self.zero_below)


class Hints(_Strict):
    #: The highest hint level students may reach (0 turns hints off; absent: every level).
    max_level: int | None = Field(default=None, ge=0)


class Integrity(_Strict):
    #: The course secret's file (relative to course.yml), created on first grading: grader/course_secret.py.
    secret_file: str = ".course-secret"


#: Gradescope's visibility values, for a test or a whole result.
GradescopeVisibility = Literal["hidden", "after_due_date", "after_published", "visible"]
GRADESCOPE_VISIBILITIES: tuple[str, ...] = get_args(GradescopeVisibility)


class Gradescope(_Strict):
    #: Visibility of the one summary test per exercise and of the per-check tests (Gradescope's values).
    summary_visibility: GradescopeVisibility = "visible"
    check_visibility: GradescopeVisibility = "after_published"
    #: The assignment's settings on Gradescope (its defaults: ½ vCPU, 768 MB, a 10-minute timeout);
    #: ``grader gradescope build`` says what to change where the grading does not fit them.
    cpus: float = Field(default=0.5, gt=0)
    memory_mb: int = Field(default=768, gt=0)
    timeout_s: float = Field(default=600, gt=0)
    #: Grading stops starting exercises, and bounds the running ones, this many seconds after the run
    #: starts: results.json is written before Gradescope's timeout (what did not run: "not graded").
    time_budget_s: float = Field(default=480, gt=0)

    @model_validator(mode="after")
    def _budget_fits(self) -> "Gradescope":
        if self.time_budget_s >= self.timeout_s:
            raise ValueError(f"gradescope.time_budget_s ({self.time_budget_s:g}) must be below gradescope.timeout_s "
                             f"({self.timeout_s:g}): results.json is written before the platform's timeout")
        return self


class Course(_Strict):
    title: str
    student_package: str = "exercises"
    reference_package: str = "solutions"
    data: Data
    defaults: Limits
    exercises: tuple[Exercise, ...] = Field(min_length=1)
    mnist_scale: MnistScale
    hints: Hints = Hints()
    gradescope: Gradescope = Gradescope()
    integrity: Integrity = Integrity()
    #: Directory holding course.yml (set by load_course; relative paths resolve against it).
    root: Path = Path(".")

    @model_validator(mode="after")
    def _unique_ids(self) -> "Course":
        seen: set[str] = set()
        for ex in self.exercises:
            if ex.id in seen:
                raise ValueError(f"exercise id {ex.id!r} appears twice")
            seen.add(ex.id)
        for ex in self.exercises:
            unknown = [d for d in ex.depends_on if d not in seen or d == ex.id]
            if unknown:
                raise ValueError(f"{ex.id}: depends_on names {unknown}, not other exercise ids")
        return self

    # -- lookups ---------------------------------------------------------------------------
    def exercise(self, exercise_id: str) -> Exercise:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        raise KeyError(f"unknown exercise id {exercise_id!r}; known: {', '.join(self.ids)}")

    @property
    def ids(self) -> list[str]:
        return [ex.id for ex in self.exercises]

    @property
    def modules(self) -> list[str]:
        return sorted({ex.module for ex in self.exercises})

    @property
    def max_score(self) -> float:
        """Points available without bonus exercises."""
        return sum(ex.points for ex in self.exercises if not ex.bonus)

    def exercise_for_function(self, module: str, function: str) -> Exercise | None:
        for ex in self.exercises:
            if ex.module == module and function in ex.functions:
                return ex
        return None

    def limits(self, exercise_id: str) -> Limits:
        """The exercise's limits: its own values where set, the course defaults elsewhere."""
        ex = self.exercise(exercise_id)
        d = self.defaults
        return Limits(
            time_limit_s=ex.time_limit_s if ex.time_limit_s is not None else d.time_limit_s,
            memory_limit_mb=ex.memory_limit_mb if ex.memory_limit_mb is not None else d.memory_limit_mb,
            forbidden_imports=ex.forbidden_imports if ex.forbidden_imports is not None else d.forbidden_imports,
            forbidden_calls=ex.forbidden_calls if ex.forbidden_calls is not None else d.forbidden_calls,
            allowed_packages=ex.allowed_packages if ex.allowed_packages is not None else d.allowed_packages,
            max_module_kb=ex.max_module_kb if ex.max_module_kb is not None else d.max_module_kb,
        )

    def resolve(self, relative: str) -> Path:
        p = Path(os.path.expanduser(relative))
        return p if p.is_absolute() else (self.root / p)


def split_ids(text: str | None) -> list[str]:
    """Exercise ids from a comma-separated list as typed on a command line or in an environment variable."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: does not match the course schema:"]
    for e in err.errors():
        key = ".".join(str(part) for part in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        lines.append(f"  - {key}: {e['msg']}{got_s}")
    return "\n".join(lines)


def parse_course(text: str, path: Path = Path("course.yml")) -> Course:
    """Validate YAML text as a course; errors name the key and the expectation."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CourseConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise CourseConfigError(f"{path}: expected a mapping of keys (title, data, defaults, exercises, ...) at top level, got {type(raw).__name__}")
    raw = dict(raw)
    raw["root"] = str(path.resolve().parent)
    try:
        return Course.model_validate(raw)
    except ValidationError as err:
        raise CourseConfigError(_format_error(path, err)) from None


def load_course(path: os.PathLike | str | None = None) -> Course:
    """Load course.yml (``path``, else ``$COURSE_YML``, else the packaged one)."""
    p = Path(path or os.environ.get("COURSE_YML") or DEFAULT_COURSE_FILE)
    return _load_cached(p.resolve())


@lru_cache(maxsize=8)
def _load_cached(p: Path) -> Course:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseConfigError(f"{p}: course file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseConfigError(f"{p}: cannot read the course file: {exc}") from None
    return parse_course(text, p)
