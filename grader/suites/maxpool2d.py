"""Hidden checks for ``pooling.maxpool2d``."""
from . import oracles
from .base import Suite
from .pooling_checks import add_pooling_checks

suite = Suite("maxpool2d")
add_pooling_checks(suite, "maxpool2d", oracles.maxpool2d)
