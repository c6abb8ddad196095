"""The trusted side of the sandbox: start, confine, talk to and kill the workers that run student code.

Everything here runs in the grader and is never copied into a sandbox:

* ``launcher``  - :class:`~grader.sandbox.launcher.Worker`: one fresh worker per exercise; its lifecycle
  and call API (every public name of the sandbox is importable from here);
* ``policy``    - :class:`SandboxLimits` and the worker's init configuration and environment (pure);
* ``isolation`` - choosing the isolation (bubblewrap > Landlock > refuse, ``GRADER_ISOLATION`` forces one);
* ``channel``   - the framed pipe exchange with a worker, with deadlines;
* ``process``   - killing the whole worker tree, captured output, clean-up;
* ``results``   - statuses, :class:`CallResult`, and the checked conversion of result frames;
* ``bwrap``     - the bubblewrap command line and filesystem view;
* ``view``      - which parts of the Python installation a worker may see;
* ``workspace`` - the per-worker temporary copy of the student's files and of the worker runtime.

What runs beside student code lives in :mod:`grader.sandbox_runtime` (copied whole into each sandbox);
the launcher imports its ``wire`` format to read what workers send (and asks its ``landlock``/``seccomp``
whether the kernel supports them). Nothing here imports ``grader.suites`` or ``solutions`` (a test checks
it): expected values, oracles, tolerances and points never cross into a worker. Keep this file free of
imports.
"""
