"""Hidden checks for ``pooling.avgpool2d``."""
from . import oracles
from .base import Suite
from .pooling_checks import add_pooling_checks

suite = Suite("avgpool2d")
add_pooling_checks(suite, "avgpool2d", oracles.avgpool2d)
