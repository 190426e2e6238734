"""The fault tier: kill -9 (COMPOSER_FAULT, composer/faults.py) at every named step of create, start,
up and down, damaged records, a dead monitor; after each, `down` must leave nothing. Uses the
acceptance tier's CLI fixtures (one busybox image for the session)."""

from tests.acceptance.conftest import busybox_base  # noqa: F401 - fixture
from tests.acceptance.test_lifecycle_scale_run import tstack  # noqa: F401 - fixture
