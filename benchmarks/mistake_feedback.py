"""How the grader's feedback fares on a catalogue of realistic wrong submissions (tests/mistakes_catalogue).

    python benchmarks/mistake_feedback.py                  # every entry: a table and the totals
    python benchmarks/mistake_feedback.py --only conv2d    # entries whose name contains "conv2d"
    python benchmarks/mistake_feedback.py --json out.json  # one row per entry, machine-readable

Each entry is graded with its exercises, as ``grader grade`` would, and classified:

- **wrong**: a cause is stated (a catalogue id or a blamed helper in ``Fail.mistakes``) that is not the
  entry's mistake: the worst outcome;
- **named**: the entry's mistake (or its wrong helper) is stated, and nothing else;
- **described**: no cause, but a description true of every failing case ("How your answer differs ...");
- **generic**: none of these (only the failing case and the values).

**Proportionate**: the points lost all fall in the concepts the entry's mistake concerns (plus
``combined``, the random cases that mix every feature), and some are lost. Targets (issue 18): the
classic entries >= 29/31 named and 0 wrong; the others 0 wrong, >= 33/37 proportionate, >= 30/37 named
or described (these catalogues' sizes differ: the figures are reported as counts of this one).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from coursekit.course import load_course  # noqa: E402
from coursekit.mistakes import INPUT_MUTATED  # noqa: E402
from grader.grade import grade_submission  # noqa: E402
from grader.suites import suite_for  # noqa: E402
from grading_helpers import reference_submission  # noqa: E402
from mistakes_catalogue import ENTRIES, Entry  # noqa: E402

DESCRIBED = "How your answer differs"


def classify(entry: Entry, report) -> dict:
    """One entry's outcome: named / wrong / described / generic, proportionate, points."""
    causes: set[str] = set()
    described = False
    lost: dict[str, set[str]] = {}
    score = max_score = 0.0
    for ex in report.exercises:
        concept_of = {c.name: c.concept for c in suite_for(ex.id).checks}
        score, max_score = score + ex.score, max_score + ex.max_score
        for t in ex.tests:
            if t.passed:
                continue
            lost.setdefault(ex.id, set()).add(concept_of.get(t.name, "?"))
            causes |= {m for m in (t.detail or {}).get("mistakes", []) if m != INPUT_MUTATED}
            described = described or DESCRIBED in t.message
    wrong = sorted(causes - entry.accept)
    outcome = "wrong" if wrong else "named" if causes else "described" if described else "generic"
    allowed = {ex: entry.concepts.get(ex, set()) | {"combined"} for ex in entry.exercises}
    proportionate = score < max_score and all(concepts <= allowed.get(ex, set()) for ex, concepts in lost.items())
    return {"name": entry.name, "classic": entry.classic, "outcome": outcome, "stated": sorted(causes), "wrong": wrong,
            "proportionate": proportionate, "lost_concepts": {k: sorted(v) for k, v in lost.items()},
            "score": round(score, 2), "max_score": round(max_score, 2)}


def grade_entry(entry: Entry, course) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sub = reference_submission(Path(tmp) / "sub", {entry.module: entry.code})
        started = time.monotonic()
        report = grade_submission(sub, course, only=list(entry.exercises), parallel=2)
        row = classify(entry, report)
        row["seconds"] = round(time.monotonic() - started, 1)
        return row


def totals(rows: list[dict]) -> dict:
    out = {}
    for kind, group in (("classic", [r for r in rows if r["classic"]]), ("unlisted", [r for r in rows if not r["classic"]])):
        count = lambda outcome: sum(r["outcome"] == outcome for r in group)  # noqa: E731
        out[kind] = {"entries": len(group), "named": count("named"), "wrong": count("wrong"), "described": count("described"),
                     "generic": count("generic"), "proportionate": sum(r["proportionate"] for r in group),
                     "full_marks": sum(r["score"] == r["max_score"] for r in group)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="entries whose name contains this text")
    parser.add_argument("--json", type=Path, help="write the rows and totals here")
    args = parser.parse_args()
    course = load_course()
    rows = []
    for entry in ENTRIES:
        if args.only and args.only not in entry.name:
            continue
        row = grade_entry(entry, course)
        rows.append(row)
        mark = "" if row["proportionate"] else "  NOT PROPORTIONATE " + json.dumps(row["lost_concepts"])
        print(f"{'classic ' if row['classic'] else 'unlisted'} {row['outcome']:9} {row['score']:5}/{row['max_score']:<5} "
              f"{row['name']}  {row['stated'] or ''}{mark}", flush=True)
    summary = totals(rows)
    for kind, t in summary.items():
        print(f"{kind}: {t}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "totals": summary}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
