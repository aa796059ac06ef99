"""Root of the test tree: makes the lab's Python package importable for every tier."""

import logging
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


def pytest_unconfigure(config):
    # Salt's log handlers flush records at interpreter exit into pytest's capture streams,
    # already closed by then: each printed a "--- Logging error ---" traceback after the
    # summary (pages of noise in CI's output). The records were captured during the tests.
    logging.raiseExceptions = False
