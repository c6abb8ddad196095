"""Grade a whole class: discover submissions, skip what is recorded, dedupe, schedule, record.

``grader grade-all SUBMISSIONS_DIR`` runs here (its flags and printing are in :mod:`grader.cli`).
One module per job:

* :mod:`.discovery` - one submission per student folder or zip; plain student ids;
* :mod:`.reading`   - read a submission on the submitting machine: its modules, one cache key per
  exercise (:mod:`grader.fingerprint`), the results known without running student code;
* :mod:`.job`       - :func:`run_job`: one student's exercises graded from the module bytes, in a
  fresh temporary folder, by :func:`grader.grade.grade_submission` (one sandbox per exercise);
* :mod:`.backends`  - where jobs run: a local process pool or a ``dask.distributed`` cluster;
* :mod:`.ledger`    - :class:`ClassRun`: plan against the gradebook (resume, cache, dedupe) and record
  what jobs produce; only this process writes the gradebook, one transaction per finished student;
* :mod:`.runner`    - :func:`grade_all`: the output folder's lock, the run from start to exports.

One student never stops the class: a submission that cannot be read (a damaged zip, a link, a
clashing id) gets status ``error`` with the reason in every exercise; an id that is not a plain
name is left out with a note; a grader failure on one student is an internal error for that
student only. The output folder's ``.grade-all.lock`` is removed when the run ends.
"""
from .backends import DaskBackend, PoolBackend
from .discovery import StudentSubmission, discover, id_key, id_problem
from .job import run_job
from .ledger import ClassRun, RunSummary
from .reading import ExerciseKey, StudentPlan, raw_fingerprint, read_submission
from .runner import LOCK_FILE, ClassRunError, GradeAllOptions, RunObserver, grade_all

__all__ = ["LOCK_FILE", "ClassRun", "ClassRunError", "DaskBackend", "ExerciseKey", "GradeAllOptions", "PoolBackend",
           "RunObserver", "RunSummary", "StudentPlan", "StudentSubmission", "discover", "grade_all", "id_key",
           "id_problem", "raw_fingerprint", "read_submission", "run_job"]
