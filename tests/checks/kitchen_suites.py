"""The checks of a kitchen.yml suite: those of the roles its pillar gives the node (the
suite's pillars_from_files topology.sls), so a suite that brings the DB along is checked for
it too. Read by verify.py (the verifier) and by tests/kitchen (how many must pass)."""

from pathlib import Path

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


def suite_checks(suite: str) -> dict:
    """``{"<role>.<check>": function}`` of the suite's roles, in role order."""
    return {f"{r}.{c.__name__}": c for r in suite_roles(suite) for c in checks(r)}
