"""Render a grade for people: the terminal table, Markdown and HTML feedback pages.

Feedback shows scores, statuses and each failed test's message (with its shrunk counterexample);
never hidden test source, and no reference output beyond the counterexample itself.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .report import GradeReport

_STYLE = {"passed": "green", "failed": "yellow", "error": "red", "timeout": "red", "forbidden": "bold red",
          "missing": "dim", "not_implemented": "dim"}


def print_report(report: GradeReport, console: Optional[Console] = None) -> None:
    console = console or Console()
    table = Table(title=f"Grade: {report.score:g} / {report.max_score:g}", title_justify="left")
    table.add_column("exercise")
    table.add_column("score", justify="right")
    table.add_column("status")
    table.add_column("time", justify="right")
    for e in report.exercises:
        name = e.id + (" (bonus)" if e.bonus else "")
        table.add_row(name, f"{e.score:.4g} / {e.max_score:g}", f"[{_STYLE[e.status]}]{e.status}[/]", f"{e.duration_s:.1f} s")
    console.print(table)
    for e in report.exercises:
        first = e.first_failure
        if first and e.status != "passed":
            console.print(Text.assemble((e.id, "bold"), ": ", first), highlight=False, soft_wrap=True)
    console.print(f"isolation: {report.isolation}; {report.duration_s:.1f} s; grader {report.grader_version}")


def markdown(report: GradeReport) -> str:
    lines = [f"# Feedback: {report.score:g} / {report.max_score:g} points", "",
             "| exercise | score | status |", "|---|---:|---|"]
    for e in report.exercises:
        lines.append(f"| {e.id}{' (bonus)' if e.bonus else ''} | {e.score:.4g} / {e.max_score:g} | {e.status} |")
    for e in report.exercises:
        lines += ["", f"## {e.id}: {e.status}, {e.score:.4g} / {e.max_score:g}"]
        if e.message:
            lines += ["", "```", e.message, "```"]
        for t in e.tests:
            mark = "passed" if t.passed else "FAILED"
            lines.append(f"- {mark}: {t.name} ({t.points:.3g} / {t.max_points:.3g})")
            if t.message and not t.passed:
                lines += ["", "  ```", *("  " + m for m in t.message.splitlines()), "  ```"]
    lines += ["", f"_Graded by grader {report.grader_version}; isolation: {report.isolation}._", ""]
    return "\n".join(lines)


def _array_picture(expected: Any, got: Any) -> Optional[str]:
    """A PNG (as a data URI) of expected / got / difference for a 2-D slice, or None."""
    if not (isinstance(expected, np.ndarray) and isinstance(got, np.ndarray)) or expected.shape != got.shape:
        return None
    if expected.ndim < 2 or expected.size == 0 or expected.size > 200_000:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = expected.reshape(-1, *expected.shape[-2:])[0].astype(np.float64)
    g = got.reshape(-1, *got.shape[-2:])[0].astype(np.float64)
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    for ax, data, title in zip(axes, (e, g, g - e), ("expected", "got", "got - expected")):
        im = ax.imshow(data, cmap="RdBu_r" if title.startswith("got -") else "viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def html_page(report: GradeReport) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Feedback</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em .8em}"
             "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}.passed{color:#176617}.failed{color:#9a6700}"
             ".error,.timeout,.forbidden{color:#b00}</style></head><body>",
             f"<h1>Feedback: {report.score:g} / {report.max_score:g} points</h1><table><tr><th>exercise</th><th>score</th><th>status</th></tr>"]
    for e in report.exercises:
        parts.append(f"<tr><td>{esc(e.id)}{' (bonus)' if e.bonus else ''}</td><td>{e.score:.4g} / {e.max_score:g}</td>"
                     f"<td class='{e.status}'>{e.status}</td></tr>")
    parts.append("</table>")
    for e in report.exercises:
        parts.append(f"<h2>{esc(e.id)}: <span class='{e.status}'>{e.status}</span>, {e.score:.4g} / {e.max_score:g}</h2>")
        if e.message:
            parts.append(f"<pre>{esc(e.message)}</pre>")
        parts.append("<ul>")
        for t in e.tests:
            parts.append(f"<li>{'passed' if t.passed else '<b>failed</b>'}: {esc(t.name)} ({t.points:.3g} / {t.max_points:.3g})")
            if t.message and not t.passed:
                parts.append(f"<pre>{esc(t.message)}</pre>")
                picture = _array_picture((t.detail or {}).get("expected"), (t.detail or {}).get("got"))
                if picture:
                    parts.append(f"<img alt='expected, got and their difference' src='{picture}'>")
            parts.append("</li>")
        parts.append("</ul>")
    parts.append(f"<p><small>Graded by grader {esc(report.grader_version)}; isolation: {esc(report.isolation)}.</small></p></body></html>")
    return "\n".join(parts)


def write_feedback(report: GradeReport, path: Path) -> None:
    """Markdown for ``.md``, HTML for ``.html``/``.htm``."""
    text = html_page(report) if path.suffix.lower() in (".html", ".htm") else markdown(report)
    path.write_text(text, encoding="utf-8")
