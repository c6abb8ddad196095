"""The trusted side of the sandbox: start, confine, talk to and kill the workers that run student code.

Everything here runs in the grader and is never copied into a sandbox:

* ``sandbox``   - :class:`~grader.sandbox.sandbox.Sandbox`: bubblewrap or Landlock around a fork server, one
  per submission and view; :class:`~grader.sandbox.sandbox.Sandboxes`, those of one submission;
* ``launcher``  - :class:`~grader.sandbox.launcher.Worker`: one fresh process per exercise, forked from a
  sandbox; its lifecycle and call API (every public name of the sandbox is importable from here);
* ``policy``    - :class:`SandboxLimits` and the worker's init configuration and environment (pure);
* ``isolation`` - choosing the isolation (bubblewrap > Landlock > refuse, ``GRADER_ISOLATION`` forces one);
* ``seccomp_filter`` - the worker's system-call filter, built with libseccomp for this architecture;
* ``channel``   - the framed pipe exchange with a worker, with deadlines;
* ``process``   - killing the whole worker tree, captured output, clean-up;
* ``results``   - statuses, :class:`CallResult`, and the checked conversion of result frames;
* ``bwrap``     - the bubblewrap command line and filesystem view;
* ``view``      - which parts of the Python installation a worker may see;
* ``workspace`` - a sandbox's directory: the worker runtime, scratch, the student's files.

What runs beside student code lives in :mod:`grader.sandbox_runtime` (copied whole into each sandbox);
the launcher imports its ``wire`` format to read what workers send, asks its ``landlock`` whether the kernel
supports it, and ``seccomp_filter`` builds the program that its ``seccomp`` installs. Nothing here imports
``grader.suites`` or ``solutions`` (a test checks it): expected values, oracles, tolerances and points never
cross into a worker. Keep this file free of imports.
"""
