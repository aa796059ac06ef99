"""Unit-test fixtures (helpers live in mc_unit_helpers.py)."""

import pytest
from mc_unit_helpers import FakeRunAll


@pytest.fixture
def fake_run_all():
    return FakeRunAll()
