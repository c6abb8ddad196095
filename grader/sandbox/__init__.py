"""The untrusted side of the grader: student code runs only in sandboxed worker processes.

Grader side (trusted, never copied into a sandbox):

* ``launcher``  - :class:`~grader.sandbox.launcher.Worker`: one fresh worker per exercise; choosing the
  isolation (bubblewrap > Landlock > refuse, ``GRADER_ISOLATION`` forces one), limits, deadlines,
  killing the whole worker tree, captured output, statuses;
* ``bwrap``     - the bubblewrap command line and filesystem view;
* ``view``      - which parts of the Python installation a worker may see;
* ``workspace`` - the per-worker temporary copy of the student's files and of the worker runtime.

Worker side (copied into each sandbox as the package ``_grader_sandbox``, see ``workspace.RUNTIME_FILES``):

* ``worker``    - the entry point: confines itself, then serves requests;
* ``wire``      - frames and values on the pipes (JSON header + raw array bytes, never pickle);
  also used by the grader side to read what workers send, with size caps and strict validation;
* ``guard``     - forbidden imports/calls, reported the moment they happen;
* ``seccomp``, ``landlock`` - the system-call filter and the fallback filesystem sandbox;
* ``torch_ops`` - describe / train / predict a student's torch model inside the worker.

Nothing here imports ``grader.suites`` or ``solutions`` (a test checks it): expected values, oracles,
tolerances and points never cross into a worker. Keep this file free of imports.
"""
