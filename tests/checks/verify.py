"""kitchen.yml's verifier: the host checks of a suite's roles, against ``--hosts``.

Run by the shell verifier (`pytest tests/checks/verify.py --hosts=...`) with KITCHEN_SUITE
set; the suite's roles are those its pillar gives the node (kitchen.yml's pillars_from_files
topology.sls), so a suite that brings the DB along is checked for it too.
"""

import os
from pathlib import Path

import pytest
import yaml

from checks import checks

REPO = Path(__file__).resolve().parents[2]


def suite_roles(suite: str) -> list[str]:
    kitchen = yaml.safe_load((REPO / "kitchen.yml").read_text())
    entry = next(s for s in kitchen["suites"] if s["name"] == suite)
    topology = yaml.safe_load(
        (REPO / entry["provisioner"]["pillars_from_files"]["topology.sls"]).read_text()
    )
    (node,) = topology["mailcluster"]["nodes"].values()
    return node["roles"]


def suite_checks() -> dict:
    suite = os.environ.get("KITCHEN_SUITE")
    if not suite:
        raise pytest.UsageError("KITCHEN_SUITE is not set (Test Kitchen's shell verifier sets it)")
    return {f"{r}.{c.__name__}": c for r in suite_roles(suite) for c in checks(r)}


CHECKS = suite_checks()


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_host(host, check):
    check(host)
