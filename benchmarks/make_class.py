"""Generate a mixed class of submissions for ``grader grade-all`` benchmarks and demos.

    python benchmarks/make_class.py OUT_DIR [--students 40]

Each student is a copy of the reference with a student-specific comment in every module (so no
two submissions share code and nothing is deduplicated), then one of these kinds:

* ``correct``   - the reference as it is (every 4th one handed in as a .zip);
* ``partial``   - ``conv_output_size`` off by one (partial credit) or ``pad2d`` mutating its input;
* ``broken``    - a syntax error, a missing module, a non-UTF-8 file, a zip escaping its folder, a zip
                  with a bad CRC, or modules that are links to a classmate's (every one graded ``error``);
* ``hostile``   - an endless loop that ignores SIGTERM, or a 16 GiB allocation;
* ``slow``      - correct, but ``padding.py`` takes 2 s to import.
"""
from __future__ import annotations

import argparse
import json
import random
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"

#: The mix for 40 students; other sizes scale it.
MIX = {"correct": 16, "partial": 8, "broken": 6, "hostile": 4, "slow": 6}

_PARTIAL = [
    ("strides", """
        def conv_output_size(n, k, stride=1, padding=0):
            if stride < 1 or n + 2 * padding < k:
                raise ValueError("bad sizes")
            return (n + 2 * padding - k) // stride
        """),
    ("padding", """
        _reference_pad2d = pad2d
        def pad2d(x, pad, value=0.0):
            out = _reference_pad2d(x, pad, value)
            if hasattr(x, "fill") and x.flags.writeable:
                x.fill(0)
            return out
        """),
]
_HOSTILE = [
    ("strides", """
        def conv_output_size(n, k, stride=1, padding=0):
            import signal
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                pass
        """),
    ("padding", """
        def pad2d(x, pad, value=0.0):
            import numpy as np
            return np.ones((1 << 31,), dtype=np.float64)
        """),
]


def _kinds(n: int) -> list[str]:
    total = sum(MIX.values())
    counts = {k: max(1, round(v * n / total)) for k, v in MIX.items()}
    counts["correct"] += n - sum(counts.values())
    kinds = [k for k, c in counts.items() for _ in range(c)]
    random.Random(0).shuffle(kinds)  # every part of the class list holds every kind; the same class each time
    return kinds


def _modules(student: str) -> dict[str, str]:
    return {f.stem: f.read_text(encoding="utf-8") + f"\n# handed in by {student}\n" for f in sorted(SOLUTIONS.glob("*.py"))
            if f.stem != "__init__"}


def _write(dest: Path, student: str, files: dict[str, bytes], as_zip: bool) -> None:
    if as_zip:
        with zipfile.ZipFile(dest / f"{student}.zip", "w") as zf:
            for name, data in files.items():
                zf.writestr(f"exercises/{name}.py", data)
    else:
        (dest / student).mkdir()
        for name, data in files.items():
            (dest / student / f"{name}.py").write_bytes(data)


def make_class(dest: Path, students: int = 40) -> dict[str, str]:
    """Write ``students`` submissions into ``dest``; returns student id -> kind (with the variant)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    roster: dict[str, str] = {}
    seen: dict[str, int] = {}
    for i, kind in enumerate(_kinds(students)):
        student = f"s{i + 1:03d}"
        variant = seen.get(kind, 0)
        seen[kind] = variant + 1
        modules = _modules(student)
        files = {m: src.encode() for m, src in modules.items()}
        label = kind
        if kind == "partial":
            module, code = _PARTIAL[variant % len(_PARTIAL)]
            files[module] += ("\n" + textwrap.dedent(code)).encode()
            label = f"partial ({module})"
        elif kind == "hostile":
            module, code = _HOSTILE[variant % len(_HOSTILE)]
            files[module] += ("\n" + textwrap.dedent(code)).encode()
            label = "hostile (" + ("endless loop" if module == "strides" else "16 GiB allocation") + ")"
        elif kind == "slow":
            files["padding"] += b"\nimport time as _time\n_time.sleep(2)  # a slow import\n"
        elif kind == "broken":
            how = variant % 6
            if how == 0:
                files["strides"] += b"\ndef conv_output_size(n, k:\n"
                label = "broken (syntax error)"
            elif how == 1:
                del files["padding"]
                label = "broken (padding.py missing)"
            elif how == 2:
                files["strides"] = "# r\xe9sum\xe9\n".encode("latin-1") + files["strides"]
                label = "broken (not UTF-8)"
            elif how == 3:
                with zipfile.ZipFile(dest / f"{student}.zip", "w") as zf:
                    zf.writestr("../../escape.py", "x = 1\n")
                roster[student] = "broken (zip escaping its folder)"
                continue
            elif how == 4:
                _write(dest, student, files, as_zip=True)
                data = bytearray((dest / f"{student}.zip").read_bytes())
                data[data.find(b"def ")] ^= 0x20  # one flipped bit in a module: the CRC check fails
                (dest / f"{student}.zip").write_bytes(bytes(data))
                roster[student] = "broken (zip with a bad CRC)"
                continue
            else:
                (dest / student).mkdir()
                for name in files:  # links to the first student's modules: refused, never graded as theirs
                    (dest / student / f"{name}.py").symlink_to(Path("..") / "s001" / f"{name}.py")
                roster[student] = "broken (links to a classmate's modules)"
                continue
        _write(dest, student, files, as_zip=(kind == "correct" and variant % 4 == 3))
        roster[student] = label
    return roster


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--students", type=int, default=40)
    args = p.parse_args()
    roster = make_class(args.out, args.students)
    print(json.dumps(roster, indent=1))


if __name__ == "__main__":
    main()
