"""Unit-test fixtures (helpers live in mc_unit_helpers.py)."""

import pytest
from mc_unit_helpers import FakeRunAll


@pytest.fixture
def run_all():
    """A fresh replay of recorded outputs for ``cmd.run_all`` (mc_unit_helpers.FakeRunAll)."""
    return FakeRunAll()
