"""Render a grade for people: the terminal table, Markdown and HTML feedback pages.

Feedback shows scores, statuses and each failed test's message (with its shrunk counterexample): the
case first (arrays of at most 8x8 per slice as numbers), then the diagnosis, then pictures of larger arrays;
never hidden test source, no grader traceback, and no reference output beyond the counterexample
itself. Rendering never fails on what a student returned: a picture that cannot be drawn is left
out, and a message that cannot be shown becomes plain text.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .report import ExerciseResult, GradeReport, TestResult, points

_STYLE = {"passed": "green", "failed": "yellow", "error": "red", "timeout": "red", "forbidden": "bold red",
          "missing": "dim", "not_implemented": "dim"}

#: Largest array drawn in a picture (elements); bigger ones are described in text only.
_MAX_PICTURE_ELEMENTS = 200_000
#: Arrays whose 2-D slices fit in this many rows and columns are shown as numbers, not drawn: a 1x1
#: heat map is a single-colour square, a table of 8x8 numbers is read at a glance.
SMALL_SIDE = 8


def _score(e: ExerciseResult) -> str:
    return f"{points(e.score)} / {points(e.max_score)}"


def _name(e: ExerciseResult) -> str:
    return e.id + (" (bonus)" if e.bonus else "")


def split_message(message: str) -> tuple[str, str]:
    """(diagnosis, details): the first line says what is wrong; the case and the arrays follow it."""
    head, _, rest = (message or "").strip("\n").partition("\n")
    return head, rest


def split_failure(message: str) -> tuple[str, str, str]:
    """(case, diagnosis, details) of a failed check's message.

    The case is the ``case: ...`` line with the indented lines after it (its small inputs as
    numbers); the diagnosis is every line before it (what is wrong, a confirmed mistake, a blamed
    helper); the details (descriptions of the arrays) follow it. A message without a case line is
    all diagnosis and details, as :func:`split_message` splits it.
    """
    lines = (message or "").strip("\n").splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("case: ")), None)
    if at is None:
        head, rest = split_message(message)
        return "", head, rest
    end = at + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return "\n".join(lines[at:end]), "\n".join(lines[:at]), "\n".join(lines[end:])


def print_report(report: GradeReport, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"Grade: {report.score_text()}", title_justify="left")
    table.add_column("exercise")
    table.add_column("score", justify="right")
    table.add_column("status")
    table.add_column("time", justify="right")
    for e in report.exercises:
        table.add_row(_name(e), _score(e), f"[{_STYLE.get(e.status, '')}]{e.status}[/]", f"{e.duration_s:.1f} s")
    console.print(table)
    seen: dict[str, str] = {}  # a message already printed (a syntax error shared by several exercises) -> where
    for e in report.exercises:
        first = _safe_text(e.first_failure)
        if first and e.status != "passed":
            shown = f"the same as {seen[first]}" if first in seen else first
            seen.setdefault(first, e.id)
            console.print(Text.assemble((e.id, "bold"), ": ", shown), highlight=False, soft_wrap=True)
        for note in e.notes:
            console.print(Text.assemble((e.id, "bold"), ": ", _safe_text(note)), highlight=False, soft_wrap=True)
    unexamined = sum(1 for e in report.exercises for t in e.tests if t.grader_traceback)
    if unexamined:
        console.print(f"note: {unexamined} check(s) could not examine the answer; the grader's tracebacks are in the JSON report")
    console.print(f"isolation: {report.isolation}; {report.duration_s:.1f} s; grader {report.grader_version}")


def _safe_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return "<a message that cannot be shown>"


def markdown(report: GradeReport) -> str:
    lines = [f"# Feedback: {report.score_text()} points", "",
             "| exercise | score | status |", "|---|---:|---|"]
    for e in report.exercises:
        lines.append(f"| {_name(e)} | {_score(e)} | {e.status} |")
    for e in report.exercises:
        lines += ["", f"## {_name(e)}: {e.status}, {_score(e)}"]
        if e.message:
            lines += ["", "```", e.message, "```"]
        for t in e.tests:
            mark = "passed" if t.passed else "FAILED"
            lines.append(f"- {mark}: {t.name} ({points(t.points)} / {points(t.max_points)})")
            if t.message:
                lines += ["", "  ```", *("  " + m for m in _message_text(t).splitlines()), "  ```"]
    lines += ["", f"_Graded by grader {report.grader_version}; isolation: {report.isolation}._", ""]
    return "\n".join(lines)


def _message_text(t: TestResult) -> str:
    """A failed check's message as text: the case first with its small arrays as numbers, then the diagnosis."""
    if t.passed:
        return t.message

    def text() -> str:
        case, diagnosis, details = split_failure(t.message)
        detail = t.detail or {}
        numbers = [n for n in (_numbers_text(name, detail.get(name)) for name in ("expected", "got")) if n]
        return "\n".join(part for part in (case, *numbers, diagnosis, details) if part)

    return safe_render(text, t.message) or t.message


# ---------------------------------------------------------------------------------------------- pictures
def _drawable(value: Any) -> np.ndarray | None:
    """A plain float64 copy of a real-valued array fit for a picture, else None."""
    if type(value) is not np.ndarray or value.dtype.kind not in "biuf":
        return None
    if value.ndim < 2 or value.size == 0 or value.size > _MAX_PICTURE_ELEMENTS:
        return None
    return value.astype(np.float64)


#: Values drawn are clipped to this magnitude: matplotlib's colour bars overflow near 1e308.
_DRAW_LIMIT = 1e100


def _finite_or_nan(data: np.ndarray) -> np.ndarray:
    return np.clip(np.where(np.isfinite(data), data, np.nan), -_DRAW_LIMIT, _DRAW_LIMIT)


def _array_picture(expected: Any, got: Any) -> str | None:
    """A PNG (as a data URI) of expected / got / difference for a 2-D slice, or None.

    Non-finite values (NaN, inf, and differences that overflow, e.g. of 1e308) are left blank; a
    slice with nothing finite to draw gives no picture.
    """
    e_all, g_all = _drawable(expected), _drawable(got)
    if e_all is None or g_all is None or e_all.shape != g_all.shape:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = e_all.reshape(-1, *e_all.shape[-2:])[0]
    g = g_all.reshape(-1, *g_all.shape[-2:])[0]
    with np.errstate(all="ignore"):
        panels = [_finite_or_nan(d) for d in (e, g, g - e)]
    if not all(np.isfinite(p).any() for p in panels):
        return None
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    try:
        for ax, data, title in zip(axes, panels, ("expected", "got", "got - expected")):
            im = ax.imshow(data, cmap="RdBu_r" if title.startswith("got -") else "viridis",
                           vmin=float(np.nanmin(data)), vmax=float(np.nanmax(data)))
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _numbers(value: Any) -> tuple[np.ndarray, str] | None:
    """The first 2-D slice of a small real array (every slice at most :data:`SMALL_SIDE` square) and its
    index text (``[0, 0]``), or None for a larger array or one that is not a plain real array."""
    if type(value) is not np.ndarray or value.dtype.kind not in "biuf" or value.size == 0:
        return None
    if value.ndim < 2:
        flat = value.reshape(1, -1)
        return (flat, "") if flat.shape[1] <= SMALL_SIDE * SMALL_SIDE else None
    if value.shape[-2] > SMALL_SIDE or value.shape[-1] > SMALL_SIDE:
        return None
    lead = value.shape[:-2]
    index = f"[{', '.join('0' for _ in lead)}]" if lead else ""
    slices = int(np.prod(lead)) if lead else 1
    return value.reshape(-1, *value.shape[-2:])[0], index + (f" (the first of {slices} slices)" if slices > 1 else "")


def _number(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _numbers_text(name: str, value: Any) -> str | None:
    """``name`` and its small array as aligned rows of numbers (for text and Markdown), or None."""
    found = _numbers(value)
    if found is None:
        return None
    table, index = found
    cells = [[_number(v) for v in row] for row in table.tolist()]
    width = max(len(c) for row in cells for c in row)
    return "\n".join([f"{name}{index}:"] + ["  " + " ".join(c.rjust(width) for c in row) for row in cells])


def _numbers_html(name: str, value: Any) -> str | None:
    found = _numbers(value)
    if found is None:
        return None
    table, index = found
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_number(v))}</td>" for v in row) + "</tr>" for row in table.tolist())
    return f"<table class='numbers'><caption>{html.escape(name + index)}</caption>{rows}</table>"


def _worth_drawing(value: Any) -> bool:
    """An array too big to read as numbers (a 2-D slice larger than :data:`SMALL_SIDE`), small enough to draw."""
    return _drawable(value) is not None and _numbers(value) is None


def safe_render(render: Callable[[], str | None], fallback: str | None = None) -> str | None:
    """The one guard around every rendering of student data: on any error, ``fallback`` (text or nothing)."""
    try:
        return render()
    except Exception:  # noqa: BLE001  a strange answer costs a picture, never the feedback page
        return fallback


# ---------------------------------------------------------------------------------------------- HTML
_CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}td,th{padding:.2em .8em}"
        "pre,.diagnosis{white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%}"
        "pre{background:#f4f4f4;padding:.6em;font-size:90%}"
        ".diagnosis{font-family:monospace;background:#fff4e5;border-left:4px solid #d08000;padding:.4em .6em;margin:.3em 0}"
        ".note{font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere;color:#333}"
        ".case{font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0}"
        "table.numbers{display:inline-table;border-collapse:collapse;margin:.2em 1em .2em 0;font-family:monospace;font-size:90%}"
        "table.numbers td{border:1px solid #ccc;text-align:right;padding:.1em .4em}table.numbers caption{text-align:left}"
        "img{max-width:100%;height:auto}"
        ".passed{color:#176617}.failed{color:#9a6700}.error,.timeout,.forbidden{color:#b00}")


def _test_html(t: TestResult) -> str:
    esc = html.escape
    parts = [f"<li>{'passed' if t.passed else '<b>failed</b>'}: {esc(t.name)} ({points(t.points)} / {points(t.max_points)})"]
    if t.message and t.passed:
        parts.append(f"<div class='note'>{esc(t.message)}</div>")
    elif t.message:  # the case first (small arrays as numbers), then the diagnosis, then the pictures
        case, diagnosis, details = split_failure(t.message)
        detail = t.detail or {}
        if case:
            parts.append(f"<div class='case'>{esc(case)}</div>")
        for name in ("expected", "got"):
            table = safe_render(lambda: _numbers_html(name, detail.get(name)))
            if table:
                parts.append(table)
        parts.append(f"<div class='diagnosis'>{esc(diagnosis)}</div>")
        if details:
            parts.append(f"<pre>{esc(details)}</pre>")
        expected, got = detail.get("expected"), detail.get("got")
        if safe_render(lambda: _worth_drawing(expected) and _worth_drawing(got)):
            picture = safe_render(lambda: _array_picture(expected, got))
            if picture:
                parts.append(f"<img alt='expected, got and their difference' src='{picture}'>")
    parts.append("</li>")
    return "".join(parts)


def html_page(report: GradeReport) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Feedback</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Feedback: {esc(report.score_text())} points</h1><table><tr><th>exercise</th><th>score</th><th>status</th></tr>"]
    for e in report.exercises:
        parts.append(f"<tr><td>{esc(_name(e))}</td><td>{_score(e)}</td><td class='{esc(e.status)}'>{esc(e.status)}</td></tr>")
    parts.append("</table>")
    for e in report.exercises:
        parts.append(f"<h2>{esc(_name(e))}: <span class='{esc(e.status)}'>{esc(e.status)}</span>, {_score(e)}</h2>")
        if e.message:
            parts.append(f"<pre>{esc(e.message)}</pre>")
        parts.append("<ul>")
        for t in e.tests:
            fallback = f"<li>{esc(t.name)}: <pre>{esc(_safe_text(t.message))}</pre></li>"
            parts.append(safe_render(lambda: _test_html(t), fallback) or fallback)
        parts.append("</ul>")
    parts.append(f"<p><small>Graded by grader {esc(report.grader_version)}; isolation: {esc(report.isolation)}.</small></p></body></html>")
    return "\n".join(parts)


def write_feedback(report: GradeReport, path: Path) -> None:
    """Markdown for ``.md``, HTML for ``.html``/``.htm``."""
    text = html_page(report) if path.suffix.lower() in (".html", ".htm") else markdown(report)
    path.write_text(text, encoding="utf-8")
