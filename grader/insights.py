"""``grader insights GRADES_DIR``: what the class misunderstood, from a ``grade-all`` gradebook.

Reads ``GRADES_DIR/gradebook.sqlite`` (read-only; the rows as last recorded per student and
exercise) and writes ``insights.json`` and ``insights.html`` (one self-contained page: the
matplotlib pictures are embedded as base64 PNG, no server and no network needed).

Where the numbers come from
  * misconceptions: each failing test result's ``mistakes`` list (the confirmed ids of
    coursekit.mistakes, such as ``conv2d.kernel_flipped``, as TestResult.to_json writes them).
    A student counts once per mistake; the points lost are the failing tests' ``max_points -
    points`` (shared evenly when one test names several);
  * MNIST: the ``mnist_accuracy`` test message (``test accuracy 0.9912 ...; training took 41.2 s``),
    else the exercise's duration for the time;
  * scores, statuses and checks: the ``results`` table as it is.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import sqlite3
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from coursekit.course import MNIST_EXERCISE, Course

from .report import STATUSES

MNIST_ID = MNIST_EXERCISE
TEACH_AGAIN = 3


@dataclass(frozen=True)
class Row:
    """What insights need of one gradebook row."""

    student: str
    exercise: str
    status: str
    score: float
    max_score: float
    bonus: bool
    duration_s: float
    tests: list[dict[str, Any]]


def read_rows(gradebook: Path) -> tuple[list[Row], list[str]]:
    """Rows and student ids from the gradebook, opened read-only (a running grade-all is not disturbed)."""
    db = sqlite3.connect(f"file:{gradebook}?mode=ro", uri=True, timeout=30)
    try:
        db.row_factory = sqlite3.Row
        rows = []
        for r in db.execute("SELECT student, exercise, status, score, max_score, bonus, duration_s, messages "
                            "FROM results ORDER BY student, exercise"):
            try:
                tests = json.loads(r["messages"])
            except (TypeError, ValueError):
                tests = []
            rows.append(Row(r["student"], r["exercise"], r["status"], float(r["score"]), float(r["max_score"]),
                            bool(r["bonus"]), float(r["duration_s"] or 0.0), tests if isinstance(tests, list) else []))
        students = [r[0] for r in db.execute("SELECT student FROM students ORDER BY student")]
    finally:
        db.close()
    return rows, sorted(set(students) | {r.student for r in rows})


def mistakes_of(test: dict[str, Any]) -> list[str]:
    """The confirmed mistake ids a test result names, each once."""
    found = test.get("mistakes")
    return list(dict.fromkeys(i for i in found if isinstance(i, str) and i)) if isinstance(found, list) else []


def mistake_label(mistake_id: str) -> str:
    """``conv2d.kernel_flipped`` -> ``kernel flipped``."""
    return mistake_id.rsplit(".", 1)[-1].replace("_", " ")


def misconceptions(rows: Iterable[Row]) -> dict[str, list[dict[str, Any]]]:
    """Per exercise, each mistake with its students and the points it cost, most frequent first."""
    students: dict[tuple[str, str], set[str]] = defaultdict(set)
    lost: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        for t in row.tests:
            if not isinstance(t, dict) or t.get("passed"):
                continue
            ids = mistakes_of(t)
            cost = max(0.0, float(t.get("max_points", 0)) - float(t.get("points", 0)))
            for mistake in ids:
                students[row.exercise, mistake].add(row.student)
                lost[row.exercise, mistake] += cost / len(ids)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (exercise, mistake), who in students.items():
        out[exercise].append({"id": mistake, "label": mistake_label(mistake), "count": len(who),
                              "students": sorted(who), "points_lost": round(lost[exercise, mistake], 4)})
    for items in out.values():
        items.sort(key=lambda m: (-m["count"], -m["points_lost"], m["id"]))
    return dict(out)


def _summary(scores: list[float], max_score: float) -> dict[str, Any]:
    return {"max_score": max_score, "n": len(scores), "mean": round(statistics.fmean(scores), 4) if scores else None,
            "median": round(statistics.median(scores), 4) if scores else None}


def mnist_metrics(tests: Iterable[dict[str, Any]], duration_s: float) -> tuple[float, float] | None:
    """(test accuracy, training seconds) from mnist_accuracy's test results (their ``metrics``), or None
    without an accuracy. Seconds: the ``train_seconds`` metric, else ``duration_s``."""
    accuracy = seconds = None
    for t in tests:
        metrics = t.get("metrics") if isinstance(t, dict) else None
        if not isinstance(metrics, dict):
            continue
        if accuracy is None:
            accuracy = _finite(metrics.get("test_accuracy"))
        if seconds is None:
            seconds = _finite(metrics.get("train_seconds"))
    if accuracy is None:
        return None
    return accuracy, float(duration_s if seconds is None else seconds)


def _finite(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) and math.isfinite(value) else None


def mnist_points(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """(student, accuracy, training seconds) for every mnist_accuracy result that reports an accuracy."""
    points = []
    for row in rows:
        found = mnist_metrics(row.tests, row.duration_s) if row.exercise == MNIST_ID else None
        if found is not None:
            points.append({"student": row.student, "accuracy": found[0], "training_s": round(found[1], 3),
                           "score": row.score})
    return points


def build_insights(rows: list[Row], students: list[str], course: Course | None = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON."""
    order = list(course.ids) if course else []
    exercises = sorted({r.exercise for r in rows}, key=lambda e: (order.index(e) if e in order else len(order), e))
    by_ex: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_ex[r.exercise].append(r)
    scores = {ex: {**_summary([r.score for r in by_ex[ex]], max(r.max_score for r in by_ex[ex])),
                   "bonus": any(r.bonus for r in by_ex[ex]),
                   "scores": {r.student: r.score for r in by_ex[ex]}} for ex in exercises}
    totals: dict[str, float] = defaultdict(float)
    for r in rows:
        totals[r.student] += r.score
    max_total = sum(s["max_score"] for s in scores.values() if not s["bonus"])
    checks: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in rows:
        for t in r.tests:
            if isinstance(t, dict) and "name" in t:
                checks[r.exercise, str(t["name"])]["passed" if t.get("passed") else "failed"] += 1
    check_rows = [{"exercise": ex, "check": name, "passed": c["passed"], "failed": c["failed"],
                   "pass_rate": round(c["passed"] / (c["passed"] + c["failed"]), 4)}
                  for (ex, name), c in checks.items()]
    check_rows.sort(key=lambda c: (exercises.index(c["exercise"]), c["check"]))
    mis = misconceptions(rows)
    flat = [{"exercise": ex, **{k: v for k, v in m.items() if k != "students"}} for ex, items in mis.items() for m in items]
    return {
        "students": len(students),
        "exercises": exercises,
        "mistake_source": "tests[].mistakes of each failing test",
        "misconceptions": {ex: mis.get(ex, []) for ex in exercises},
        "teach_again": sorted(flat, key=lambda m: (-m["points_lost"], -m["count"], m["id"]))[:TEACH_AGAIN],
        "scores": scores,
        "total": {**_summary(list(totals.values()), max_total), "scores": dict(sorted(totals.items()))},
        "checks": check_rows,
        "most_failed_checks": sorted((c for c in check_rows if c["failed"]),
                                     key=lambda c: (-c["failed"], c["pass_rate"], c["exercise"], c["check"]))[:10],
        "statuses": {ex: {s: n for s, n in Counter(r.status for r in by_ex[ex]).items()} for ex in exercises},
        "mnist": mnist_points(rows),
    }


# ------------------------------------------------------------------------------------------ pictures


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _histograms(data: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    panels = [("total", data["total"]), *((ex, data["scores"][ex]) for ex in data["exercises"])]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (name, s) in zip(axes.flat, panels):
        values = list(s["scores"].values())
        top = max(s["max_score"], max(values, default=0.0), 1e-9)
        ax.hist(values, bins=min(20, max(5, len(values))), range=(0, top), color="#4878cf" if name != "total" else "#d65f5f")
        ax.set_title(f"{name} (max {s['max_score']:g})", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle("Score distributions (students per score)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _statuses(data: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    colours = {"passed": "#6acc65", "failed": "#d65f5f", "error": "#956cb4", "timeout": "#ee854a",
               "forbidden": "#8c613c", "missing": "#bbbbbb", "not_implemented": "#82c6e2"}
    exercises = data["exercises"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(exercises) + 1.2))
    left = [0] * len(exercises)
    for status in STATUSES:
        counts = [data["statuses"][ex].get(status, 0) for ex in exercises]
        if any(counts):
            ax.barh(exercises, counts, left=left, color=colours[status], label=status)
            left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return _png(fig)


def _checks(data: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    checks = data["checks"]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(checks) + 1.0))
    labels = [f"{c['exercise']}: {c['check'][:60]}" for c in checks]
    ax.barh(labels, [100 * c["pass_rate"] for c in checks], color="#4878cf")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate (%)")
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig)


def _mnist(data: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    pts = data["mnist"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p["training_s"] for p in pts], [p["accuracy"] for p in pts], color="#4878cf")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("MNIST test accuracy")
    ax.set_title("MNIST accuracy against training time (one dot per student)")
    return _png(fig)


# ------------------------------------------------------------------------------------------ page

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;font-size:.9rem}
td.n{text-align:right}.teach{background:#fff4d6;padding:.6rem 1rem;border-left:4px solid #e0a800}
details{font-size:.85rem;color:#444}img{max-width:100%}
"""


def html_page(data: dict[str, Any]) -> str:
    e = html.escape
    pictures = {"histograms": _histograms(data), "statuses": _statuses(data)}
    if data["checks"]:
        pictures["checks"] = _checks(data)
    if data["mnist"]:
        pictures["mnist"] = _mnist(data)

    def img(key: str, alt: str) -> str:
        return f"<img id='plot-{key}' alt='{e(alt)}' src='data:image/png;base64,{pictures[key]}'>" if key in pictures else ""

    teach = "".join(f"<li><b>{e(m['label'])}</b> in <code>{e(m['exercise'])}</code>: {m['count']} students, "
                    f"{m['points_lost']:g} points lost</li>" for m in data["teach_again"])
    mis_rows = "".join(
        f"<tr><td><code>{e(ex)}</code></td><td>{e(m['label'])} <small>(<code>{e(m['id'])}</code>)</small></td>"
        f"<td class='n'>{m['count']}</td><td class='n'>{m['points_lost']:g}</td>"
        f"<td><details><summary>{m['count']} students</summary>{e(', '.join(m['students']))}</details></td></tr>"
        for ex in data["exercises"] for m in data["misconceptions"][ex])
    status_head = "".join(f"<th>{s}</th>" for s in STATUSES)
    status_rows = "".join(f"<tr><td><code>{e(ex)}</code></td>"
                          + "".join(f"<td class='n'>{data['statuses'][ex].get(s, 0) or ''}</td>" for s in STATUSES)
                          + "</tr>" for ex in data["exercises"])
    failed = "".join(f"<tr><td><code>{e(c['exercise'])}</code></td><td>{e(c['check'])}</td><td class='n'>{c['failed']}</td>"
                     f"<td class='n'>{c['pass_rate']:.0%}</td></tr>" for c in data["most_failed_checks"])
    score_rows = "".join(f"<tr><td><code>{e(ex)}</code>{' (bonus)' if s['bonus'] else ''}</td><td class='n'>{s['mean']:.3g}</td>"
                         f"<td class='n'>{s['median']:.3g}</td><td class='n'>{s['max_score']:g}</td></tr>"
                         for ex, s in data["scores"].items())
    t = data["total"]
    total_row = (f"<tr><th>total</th><td class='n'>{t['mean']:.3g}</td><td class='n'>{t['median']:.3g}</td>"
                 f"<td class='n'>{t['max_score']:g}</td></tr>") if t["n"] else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Class insights</title><style>{_STYLE}</style></head>
<body><h1>Class insights</h1>
<p>{data['students']} students, {len(data['exercises'])} exercises graded.</p>
<h2>Teach this again</h2>
<div class="teach">{'<ol>' + teach + '</ol>' if teach else '<p>No confirmed mistakes were recorded.</p>'}
<small>The misconceptions that cost the class the most points.</small></div>
<h2>Misconceptions</h2>
{'<table><tr><th>exercise</th><th>mistake</th><th>students</th><th>points lost</th><th>who</th></tr>' + mis_rows + '</table>'
 if mis_rows else '<p>No confirmed mistakes were recorded in this gradebook.</p>'}
<p><small>Source: {e(data['mistake_source'])}.</small></p>
<h2>Scores</h2>
<table><tr><th>exercise</th><th>mean</th><th>median</th><th>max</th></tr>{score_rows}{total_row}</table>
{img('histograms', 'score histograms')}
<h2>Statuses</h2>
<table><tr><th>exercise</th>{status_head}</tr>{status_rows}</table>
{img('statuses', 'statuses per exercise')}
<h2>Checks that fail most</h2>
{'<table><tr><th>exercise</th><th>check</th><th>students failing</th><th>pass rate</th></tr>' + failed + '</table>'
 if failed else '<p>No check failed.</p>'}
<h2>Pass rate per check</h2>
{img('checks', 'pass rate per check')}
<h2>MNIST accuracy and training time</h2>
{img('mnist', 'MNIST accuracy against training time') or '<p>No MNIST accuracy was recorded.</p>'}
</body></html>
"""


def write_insights(grades_dir: Path, course: Course | None = None) -> dict[str, Path]:
    """Write ``insights.json`` and ``insights.html`` next to the gradebook."""
    import matplotlib

    matplotlib.use("Agg")
    grades_dir = Path(grades_dir)
    rows, students = read_rows(grades_dir / "gradebook.sqlite")
    data = build_insights(rows, students, course)
    paths = {"json": grades_dir / "insights.json", "html": grades_dir / "insights.html"}
    paths["json"].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    paths["html"].write_text(html_page(data), encoding="utf-8")
    return paths


def command(args: Any, course: Course) -> int:
    """``grader insights``: 0 with the pages written, 2 without a gradebook."""
    import sys

    gradebook = Path(args.grades) / "gradebook.sqlite"
    if not gradebook.is_file():
        print(f"grader: {gradebook}: no gradebook (run `grader grade-all ... --out {args.grades}` first)", file=sys.stderr)
        return 2
    try:
        paths = write_insights(Path(args.grades), course)
    except sqlite3.DatabaseError as exc:
        print(f"grader: {gradebook}: cannot read the gradebook: {exc}", file=sys.stderr)
        return 2
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    for m in data["teach_again"]:
        print(f"teach again: {m['label']} ({m['exercise']}): {m['count']} students, {m['points_lost']:g} points lost")
    print(f"wrote {paths['html']} and {paths['json']}")
    return 0
