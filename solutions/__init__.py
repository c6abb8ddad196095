"""Reference solutions: the source of truth from which ``exercises/`` is generated (``grader stubs``)."""
