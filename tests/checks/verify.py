"""kitchen.yml's verifier: the host checks of a suite's roles (checks.kitchen_suites), against
``--hosts``. Run by the shell verifier (`pytest tests/checks/verify.py --hosts=...`) with
KITCHEN_SUITE set."""

import os

import pytest

from checks.kitchen_suites import suite_checks

if not os.environ.get("KITCHEN_SUITE"):
    raise pytest.UsageError("KITCHEN_SUITE is not set (Test Kitchen's shell verifier sets it)")
CHECKS = suite_checks(os.environ["KITCHEN_SUITE"])


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_host(host, check):
    check(host)
