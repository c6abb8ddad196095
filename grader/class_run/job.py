"""The job: one student's exercises graded from the module bytes, anywhere (a pool process, a Dask worker)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from coursekit.course import Course

from ..fingerprint import grader_build

_MODULE_NAME = re.compile(r"[a-z][a-z0-9_]*")


@lru_cache(maxsize=4)
def _course_from(course_json: str) -> Course:
    return Course.model_validate_json(course_json)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Grade one student's exercises from the module bytes in ``job``; returns plain JSON.

    Runs in a pool process or on a Dask worker: writes the files into a fresh temporary folder (under the
    run's temporary root ``job["tmp_root"]`` when this machine has it, else the system's),
    grades them with :func:`grader.grade.grade_submission` (one sandbox per exercise) and removes
    the folder. A failure of the grader itself comes back as ``{"ok": False, "error": ...}``.
    """
    started = time.monotonic()
    base = {"student": job["student"], "build": grader_build(), "host": socket.gethostname(), "pid": os.getpid()}
    root = job.get("tmp_root")
    saved_tempdir = tempfile.tempdir
    if root and os.path.isdir(root):  # the run's temporary root, where it can be reached (not on a remote worker)
        tempfile.tempdir = root        # the job folder, the workspace and the sandboxes' copies all go there
    tmp = Path(tempfile.mkdtemp(prefix="grade-all-"))
    try:
        from ..grade import grade_submission

        course = _course_from(job["course"])
        package_dir = tmp / job["package"]
        package_dir.mkdir()
        for name, data in job["files"].items():
            if not _MODULE_NAME.fullmatch(name):
                raise ValueError(f"bad module name {name!r} in job")
            (package_dir / f"{name}.py").write_bytes(data)
        with warnings.catch_warnings():  # library deprecation notices would only garble the progress display
            warnings.simplefilter("ignore")
            report = grade_submission(tmp, course, only=job["exercises"], allow_unsandboxed=job["allow_unsandboxed"],
                                      threads=job["threads"])
        return {**base, "ok": True, "report": report.to_json(), "wall_s": time.monotonic() - started}
    except Exception as exc:  # GraderInternalError, WorkerError (no sandbox), a bug: no score for this student
        return {**base, "ok": False, "error": f"{type(exc).__name__}: {exc}", "wall_s": time.monotonic() - started}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        tempfile.tempdir = saved_tempdir

