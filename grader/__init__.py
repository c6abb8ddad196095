"""The course grader: hidden suites on the trusted side, student code in a sandboxed worker."""
__version__ = "0.1.0"
