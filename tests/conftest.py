"""Root of the test tree: makes the lab's Python package importable for every tier, and skips
the opt-in tiers (OPT_IN: long lab, long vm, seed) unless their environment variable is 1."""

import logging
import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
# testinfra's nspawn:// backend (host checks of lab and kitchen nodes, tests/checks/)
import mclab.testinfra_nspawn  # noqa: E402, F401


@pytest.fixture
def lab_pillar():
    """The lab's pillar as the master compiles it for a DNS node (pillar/*.sls that carry the
    cluster; node.sls and the optional ones left out): a fresh copy per test, to change."""
    pillar = {}
    for name in ("topology", "domains", "secrets"):
        data = yaml.safe_load((REPO / "pillar" / f"{name}.sls").read_text())
        for key, value in data.items():
            pillar.setdefault(key, {}).update(value)
    return pillar


#: the opt-in tiers: marker -> (the environment variable that turns it on, the tier's name)
OPT_IN = {
    "labfull": ("MC_LAB_FULL", "long lab tier"),
    "vmfull": ("MC_VM_FULL", "long vm tier"),
    "seed": ("MC_SEED", "seed tier"),
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # last: tests/vm and tests/seed mark their items first (markers vm/vmfull, seed)
    for item in items:
        for marker, (env, tier) in OPT_IN.items():
            if item.get_closest_marker(marker) and os.environ.get(env) != "1":
                item.add_marker(pytest.mark.skip(reason=f"{tier}: opt-in, set {env}=1"))


def pytest_unconfigure(config):
    # Salt's log handlers flush records at interpreter exit into pytest's capture streams,
    # already closed by then: each printed a "--- Logging error ---" traceback after the
    # summary (pages of noise in CI's output). The records were captured during the tests.
    logging.raiseExceptions = False
