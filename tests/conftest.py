"""Root of the test tree: makes the lab's Python package importable for every tier."""

import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))


def pytest_unconfigure(config):
    # Salt's log handlers flush records at interpreter exit into pytest's capture streams,
    # already closed by then: each printed a "--- Logging error ---" traceback after the
    # summary (pages of noise in CI's output). The records were captured during the tests.
    logging.raiseExceptions = False
