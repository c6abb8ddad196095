"""``grader similarity SUBMISSIONS_DIR``: pairs of students whose code is suspiciously alike.

The detection is :mod:`copydetect`'s (winnowed fingerprints of normalised token streams: variable,
function and object names become one symbol each, comments and whitespace disappear, so renames,
reordered functions and rewritten comments do not hide a copy). What this module adds is the
course's framing:

* each student's modules (read like the grader reads them, zips included) are joined into one
  file, so a copy spread over several modules still counts once per pair;
* the released stubs (``exercises/*.py``, the text every student starts from) are *boilerplate*:
  their fingerprints never count as a match;
* a pair's similarity is the larger of the two shares of fingerprinted code found in the other
  student's file (copying a few exercises from a complete submission still scores high); a pair
  is flagged from ``DEFAULT_THRESHOLD`` with at least ``MIN_OVERLAP_TOKENS`` shared tokens.

Outputs ``similarity.csv`` (every compared pair, most similar first) and ``similarity.html`` (the
flagged pairs, matching regions highlighted side by side). A flag is a reason to look, never proof.
"""
from __future__ import annotations

import html
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coursekit.course import Course

from . import exports

#: Flag a pair from this share of fingerprinted code in common (independent solutions of this
#: course's exercises score 0.0-0.3 in tests/test_similarity.py; disguised copies 0.8-1.0).
DEFAULT_THRESHOLD = 0.5
#: ... and at least this many shared (normalised) tokens, so two near-empty submissions are not flagged.
MIN_OVERLAP_TOKENS = 50
#: copydetect's noise threshold (shortest normalised match that counts, in characters) and guarantee.
NOISE_T = 25
GUARANTEE_T = 30
#: HTML rows at most (the CSV has every pair).
MAX_HTML_PAIRS = 200



@dataclass(frozen=True)
class Pair:
    """Two students and how much of their code is shared."""

    student_a: str
    student_b: str
    similarity: float        # max(share_a, share_b)
    share_a: float           # share of a's fingerprinted code found in b's
    share_b: float
    overlap_tokens: int
    flagged: bool
    code_a: str = ""         # HTML, matching regions highlighted (flagged pairs only)
    code_b: str = ""


@dataclass
class SimilarityReport:
    pairs: list[Pair]
    students: list[str]
    notes: list[str]
    threshold: float


def _collect(submissions_dir: Path, course: Course, into: Path) -> tuple[dict[str, Path], list[str]]:
    """One joined source file per readable submission under ``into/<n>/``; notes for the rest."""
    from .class_run import discover
    from .submission import SubmissionError, prepare

    subs, notes = discover(submissions_dir)
    files: dict[str, Path] = {}
    for n, sub in enumerate(subs):
        if getattr(sub, "refused", None):
            notes.append(f"{sub.student}: not compared ({sub.refused})")
            continue
        try:
            ws = prepare(sub.path, course.student_package, course.modules)
        except SubmissionError as exc:
            notes.append(f"{sub.student}: not compared ({exc})")
            continue
        with ws:
            text = _joined(ws.modules)
            notes.extend(f"{sub.student}: {why}" for why in ws.problems.values())
        if not text:
            notes.append(f"{sub.student}: no modules to compare")
            continue
        target = into / f"s{n:05d}" / "submission.py"  # folder names never come from student input
        target.parent.mkdir(parents=True)
        target.write_text(text, encoding="utf-8")
        files[sub.student] = target
    return files, notes


def _joined(modules: dict[str, Path]) -> str:
    """A submission's modules as one text, in module order (the stubs are joined the same way)."""
    return "\n".join(f"# ---- {m}.py\n" + modules[m].read_text(encoding="utf-8") for m in sorted(modules))


def _stub_files(course: Course, into: Path) -> list[Path]:
    """The released stubs as boilerplate: each module, and all joined like a submission."""
    folder = course.root / course.student_package
    stubs = {p.stem: p for p in sorted(folder.glob("*.py")) if p.name != "__init__.py" and p.stem in course.modules}
    joined = into / "stubs_joined.py"
    joined.write_text(_joined(stubs), encoding="utf-8")
    return [*stubs.values(), joined]


def find_similar(submissions_dir: Path, course: Course, threshold: float = DEFAULT_THRESHOLD,
                 boilerplate: list[Path] | None = None) -> SimilarityReport:
    """Compare every pair of submissions; pairs sorted most similar first."""
    from copydetect import CopyDetector

    with tempfile.TemporaryDirectory(prefix="grader-similarity-") as tmp:
        files, notes = _collect(Path(submissions_dir), course, Path(tmp) / "subs")
        students = sorted(files)
        if len(files) < 2:
            return SimilarityReport([], students, notes + ["fewer than two readable submissions: nothing to compare"],
                                    threshold)
        logging.getLogger().setLevel(logging.ERROR)  # copydetect warns about empty folders through the root logger
        # display_t: copydetect highlights the matching regions only of pairs at or above the threshold
        detector = CopyDetector(noise_t=NOISE_T, guarantee_t=GUARANTEE_T, display_t=threshold - 1e-9, extensions=["py"],
                                autoopen=False, silent=True, out_file=str(Path(tmp) / "unused.html"))
        for path in files.values():
            detector.add_file(str(path))
        for stub in boilerplate if boilerplate is not None else _stub_files(course, Path(tmp)):
            detector.add_file(str(stub), type="boilerplate")
        detector.run()
        who = {str(p): s for s, p in files.items()}
        index = {f: i for i, f in enumerate(detector.test_files)}
        highlighted = {}
        for test_sim, ref_sim, fa, fb, code_a, code_b, _ in detector.get_copied_code_list():
            highlighted[(fa, fb)] = (code_a, code_b)
            highlighted[(fb, fa)] = (code_b, code_a)
        pairs: list[Pair] = []
        for a in students:
            for b in students:
                if a >= b:
                    continue
                fa, fb = str(files[a]), str(files[b])
                i, j = index[fa], detector.ref_files.index(fb)
                share_a, share_b = (float(max(v, 0.0)) for v in detector.similarity_matrix[i, j])
                overlap = int(max(detector.token_overlap_matrix[i, j], 0))
                similarity = max(share_a, share_b)
                flagged = similarity >= threshold and overlap >= MIN_OVERLAP_TOKENS
                code_a, code_b = highlighted.get((fa, fb), ("", "")) if flagged else ("", "")
                pairs.append(Pair(who[fa], who[fb], similarity, share_a, share_b, overlap, flagged, code_a, code_b))
    pairs.sort(key=lambda p: (-p.similarity, -p.overlap_tokens, p.student_a, p.student_b))
    return SimilarityReport(pairs, students, notes, threshold)


def write_csv(report: SimilarityReport, path: Path) -> None:
    """The ranked pairs, most similar first (formula-like cells neutralised by exports.write_csv)."""
    rows = [["rank", "student_a", "student_b", "similarity", "share_a", "share_b", "overlap_tokens", "flagged"]]
    rows += [[rank, p.student_a, p.student_b, f"{p.similarity:.4f}", f"{p.share_a:.4f}", f"{p.share_b:.4f}",
              p.overlap_tokens, "yes" if p.flagged else "no"] for rank, p in enumerate(report.pairs, 1)]
    exports.write_csv(path, rows)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table.pairs{border-collapse:collapse}table.pairs td,table.pairs th{border:1px solid #ccc;padding:.25rem .6rem}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
pre{background:#f7f7f7;padding:.5rem;overflow:auto;max-height:40rem;font-size:.8rem}
.highlight-red{background:#fbb}.highlight-green{background:#bfb}
details{margin:1rem 0;border-top:1px solid #ddd;padding-top:.5rem}
"""


def html_page(report: SimilarityReport) -> str:
    """One self-contained page: the flagged pairs ranked, each with both files side by side."""
    flagged = [p for p in report.pairs if p.flagged][:MAX_HTML_PAIRS]
    e = html.escape
    rows = "".join(f"<tr><td>{n}</td><td><a href='#pair{n}'>{e(p.student_a)}</a></td><td>{e(p.student_b)}</td>"
                   f"<td>{p.similarity:.0%}</td><td>{p.share_a:.0%} / {p.share_b:.0%}</td><td>{p.overlap_tokens}</td></tr>"
                   for n, p in enumerate(flagged, 1))
    details = "".join(
        f"<details id='pair{n}' {'open' if n <= 3 else ''}><summary><b>{n}. {e(p.student_a)} and {e(p.student_b)}</b>: "
        f"{p.similarity:.0%} similar ({p.overlap_tokens} shared tokens)</summary><div class='side'>"
        f"<div><h4>{e(p.student_a)} ({p.share_a:.0%} of it matched)</h4><pre>{p.code_a}</pre></div>"
        f"<div><h4>{e(p.student_b)} ({p.share_b:.0%} of it matched)</h4><pre>{p.code_b}</pre></div></div></details>"
        for n, p in enumerate(flagged, 1))  # code_a/b: copydetect's HTML, source already escaped
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    more = (f"<p>Only the first {MAX_HTML_PAIRS} flagged pairs are shown; similarity.csv has every pair.</p>"
            if len([p for p in report.pairs if p.flagged]) > MAX_HTML_PAIRS else "")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity report</title><style>{_STYLE}</style>"
            f"</head><body><h1>Similarity report</h1><p>{len(report.students)} submissions compared, "
            f"{len(report.pairs)} pairs; {len([p for p in report.pairs if p.flagged])} flagged (similarity from "
            f"{report.threshold:.0%}, at least {MIN_OVERLAP_TOKENS} shared tokens). The released stubs are ignored; "
            "renamed variables, reordered functions and rewritten comments are seen through. A flag is a reason to "
            "look at the code, not proof of copying.</p>"
            f"<table class='pairs'><tr><th>#</th><th>student</th><th>student</th><th>similarity</th>"
            f"<th>share of each</th><th>shared tokens</th></tr>{rows}</table>{more}{details}"
            f"{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}</body></html>")


def command(args, course: Course) -> int:
    """``grader similarity``: exit 0 with a report, 2 on a usage error."""
    import sys

    if not Path(args.submissions).is_dir():
        print(f"grader: {args.submissions}: not a folder of submissions", file=sys.stderr)
        return 2
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0.0 < threshold <= 1.0:
        print("grader: --threshold must be in (0, 1]", file=sys.stderr)
        return 2
    report = find_similar(Path(args.submissions), course, threshold)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(report, out / "similarity.csv")
    (out / "similarity.html").write_text(html_page(report), encoding="utf-8")
    flagged = [p for p in report.pairs if p.flagged]
    for p in flagged[:10]:
        print(f"{p.similarity:6.1%}  {p.student_a}  {p.student_b}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{len(report.students)} submissions, {len(flagged)} pairs flagged; wrote {out / 'similarity.html'} "
          f"and {out / 'similarity.csv'}")
    return 0
