"""Benchmark ``grader grade-all`` on a generated class: 1 vs 2 workers vs a 2-worker Dask cluster, and a resume.

    python benchmarks/grade_class.py [--students 40] [--only IDS] [--time-limit 10] [--no-dask] [--keep DIR]
                                     [--scale 200]

Every run is the real command line (``python -m grader grade-all``) into a fresh output folder,
so nothing is cached between them. Submissions are all different (see ``make_class.py``), so
deduplication does not help either. By default only fast numpy exercises are graded (MNIST
training would take hours for 40 students on 2 cores); the output says which. The course copy
used has a shorter time limit so that the endless loops cost ``--time-limit`` seconds each.

Goals (issue 11): 2 workers <= 0.55 x the 1-worker time; Dask within 10 % of the 2-process pool;
``--scale N``: a class of N graded by 2 workers at the same time per student (within 10 %) as the class
of ``--students``, with the coordinating process's peak memory (RSS, sampled every 50 ms) flat.
The resumed run is killed (SIGKILL) once half the class is recorded, then restarted; the
gradebook's event log must show no exercise result graded twice and every row recorded once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_class import make_class  # noqa: E402

from coursekit.course import DEFAULT_COURSE_FILE, load_course  # noqa: E402
from grader.gradebook import Gradebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = "conv_output_size,pad2d,same_padding,avgpool2d"


def short_course(dest: Path, time_limit_s: float) -> Path:
    raw = yaml.safe_load(DEFAULT_COURSE_FILE.read_text(encoding="utf-8"))
    raw["defaults"]["time_limit_s"] = time_limit_s
    real = load_course()
    raw["data"]["mnist_dir"] = str(real.resolve(real.data.mnist_dir).resolve())
    path = dest / "course.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def command(course: Path, klass: Path, out: Path, only: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "--course", str(course), "grade-all", str(klass), "--out", str(out),
            "--only", only, *extra]


PEAK_RSS: dict[str, float] = {}  # command's --out -> peak RSS (MB) of the coordinating process


def timed(cmd: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    stderr = proc.stderr.read()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    PEAK_RSS[cmd[cmd.index("--out") + 1]] = peak / 2**20
    return wall


def table(out: Path) -> dict[tuple[str, str], tuple[str, float]]:
    with Gradebook(out / "gradebook.sqlite") as gb:
        return {(r.student, r.exercise): (r.status, r.score) for r in gb.all_rows()}


def recorded_students(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM students").fetchone()[0]
    except sqlite3.Error:
        return 0


def resume(cmd: list[str], out: Path, students: int) -> tuple[float, int, float]:
    """(seconds until the kill, students recorded then, seconds of the resumed run)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while recorded_students(out / "gradebook.sqlite") < students // 2:
        if proc.poll() is not None:
            raise SystemExit("the run finished before it could be killed")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_after = time.monotonic() - started
    at_kill = recorded_students(out / "gradebook.sqlite")
    return killed_after, at_kill, timed(cmd)


def tree_cpu() -> float:
    """CPU seconds used by this process's children: reaped ones and the living (a Dask cluster)."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system + c.children_user + c.children_system
        except psutil.Error:
            pass
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--only", default=FAST, help=f"exercises to grade (default: {FAST})")
    p.add_argument("--time-limit", type=float, default=10.0, help="course time limit per exercise, seconds")
    p.add_argument("--repeat", type=int, default=1, help="interleaved rounds of the three set-ups; the best counts")
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--keep", type=Path, help="keep the class and outputs here")
    p.add_argument("--scale", type=int, default=0, help="also grade a class of this many students (2 workers)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="grade-class-bench-")) if not args.keep else args.keep
    work.mkdir(parents=True, exist_ok=True)
    roster = make_class(work / "class", args.students)
    course = short_course(work, args.time_limit)
    n = len(roster)
    print(f"class: {n} students: " + ", ".join(f"{c} {k}" for k, c in sorted(Counter(
        v.split(" (")[0] for v in roster.values()).items())))
    print(f"graded: --only {args.only} (MNIST training left out); time limit {args.time_limit:g} s per exercise; "
          f"{os.cpu_count()} CPUs shared with other work; {args.repeat} interleaved round(s), best wall time counts",
          flush=True)

    setups: dict[str, list[str]] = {"pool x1": ["--workers", "1"], "pool x2": ["--workers", "2"]}
    cluster = None
    if not args.no_dask:
        import logging

        from distributed import LocalCluster

        t0 = time.monotonic()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        print(f"dask LocalCluster (2 workers x 1 thread) started in {time.monotonic() - t0:.1f} s (not counted)")
        setups["dask x2"] = ["--scheduler", cluster.scheduler_address]
    walls: dict[str, list[float]] = {k: [] for k in setups}
    reference = None
    try:
        for r in range(args.repeat):
            for name, extra in setups.items():
                out = work / f"out-{name.replace(' ', '')}-{r}"
                load, cpu0 = os.getloadavg()[0], tree_cpu()
                wall = timed(command(course, work / "class", out, args.only, *extra))
                cpu = tree_cpu() - cpu0
                walls[name].append(wall)
                print(f"  round {r + 1}: {name}: {wall:6.1f} s wall, {wall / n:.2f} s per student; CPU {cpu:6.1f} s "
                      f"(x{cpu / wall:.2f} of one core); coordinator peak RSS {PEAK_RSS[str(out)]:.0f} MB; "
                      f"load average before {load:.1f}", flush=True)
                t = table(out)
                reference = reference or t
                assert t == reference, f"{name} gave a different gradebook"
    finally:
        if cluster is not None:
            cluster.close()
    best = {k: min(v) for k, v in walls.items()}
    for name, wall in best.items():
        print(f"{name}: best {wall:.1f} s ({wall / n:.2f} s per student)")

    out = work / "out-resume"
    killed_after, at_kill, resumed = resume(command(course, work / "class", out, args.only, "--workers", "2"), out, n)
    with Gradebook(out / "gradebook.sqlite") as gb:
        twice = gb.graded_twice()
        recorded = Counter((e["student"], e["exercise"]) for e in gb.events("recorded"))
        graded = len(gb.events("graded"))
    with Gradebook(work / "out-poolx2-0" / "gradebook.sqlite") as gb:
        graded_uninterrupted = len(gb.events("graded"))
    same = table(out) == reference
    print(f"resume (2 workers): killed (SIGKILL) after {killed_after:.1f} s with {at_kill}/{n} students recorded; "
          f"resumed run {resumed:.1f} s; together {killed_after + resumed:.1f} s")
    print(f"  proof: results graded twice: {len(twice)}; exercise results graded {graded} "
          f"(uninterrupted run: {graded_uninterrupted}); rows recorded more than once: "
          f"{sum(1 for c in recorded.values() if c > 1)} of {len(recorded)}; final gradebook equals the others: {same}")

    ratio = best["pool x2"] / best["pool x1"]
    print(f"2 workers / 1 worker = {ratio:.2f} (goal <= 0.55: {'met' if ratio <= 0.55 else 'NOT met'})")
    if "dask x2" in best:
        d = best["dask x2"] / best["pool x2"]
        print(f"dask / pool (2 workers) = {d:.2f} (goal within 10 %: {'met' if abs(d - 1) <= 0.10 else 'NOT met'})")
    if args.scale:
        big = work / f"class-{args.scale}"
        make_class(big, args.scale)
        out = work / f"out-scale-{args.scale}"
        load = os.getloadavg()[0]
        wall = timed(command(course, big, out, args.only, "--workers", "2"))
        small = best["pool x2"] / n
        rss_small = max(v for k, v in PEAK_RSS.items() if "out-poolx2" in k)
        print(f"class of {args.scale} (2 workers): {wall:.1f} s, {wall / args.scale:.2f} s per student against "
              f"{small:.2f} for {n} ({wall / args.scale / small:.2f}x; goal within 10 %: "
              f"{'met' if abs(wall / args.scale / small - 1) <= 0.10 else 'NOT met'}); coordinator peak RSS "
              f"{PEAK_RSS[str(out)]:.0f} MB against {rss_small:.0f} MB; load average before {load:.1f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}" + (f"; outputs in {work}" if args.keep else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
