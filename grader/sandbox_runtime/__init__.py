"""The worker runtime: the only grader code that runs beside student code, copied whole into each sandbox.

Every module of this folder (and only those) is copied into a worker's workspace as the package
``_grader_sandbox`` (see :func:`grader.sandbox.workspace.create_worker_dir`) and runs there next to the
student's modules:

* ``zygote``    - the fork server: imports numpy/torch once, forks a fresh worker per exercise;
* ``worker``    - one exercise's worker: confines itself, then serves requests;
* ``wire``      - frames and values on the pipes (JSON header + raw array bytes, never pickle); the one
  module the trusted side (:mod:`grader.sandbox.launcher`) also imports, to read what workers send with
  size caps and strict validation;
* ``guard``     - forbidden imports/calls, reported the moment they happen;
* ``seccomp`` - installs the system-call filter the grader built (:mod:`grader.sandbox.seccomp_filter`);
* ``landlock`` - the fallback filesystem sandbox (the launcher also asks it whether this kernel supports it);
* ``torch_ops`` - describe / train / predict a student's torch model inside the worker.

Nothing here imports the trusted side (``grader.sandbox``, ``grader.suites``, ``solutions``, anything
else from ``grader``): a test checks it. Only relative imports between these modules. Keep this file free
of imports: it is the copied package's ``__init__``.
"""
