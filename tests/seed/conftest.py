"""Fixtures of the seed tier (issue 11): the seed's own system, with the mail pair as qemu
guests on DRBD dual primary + OCFS2 (`lab/lab up --storage drbd`).

Opt-in (`MC_SEED=1`): the guests run under TCG on this 2-core machine, so the tier takes far
longer than the default run allows. It needs a lab of its own: with a shared_path lab up (a
developer's, or the lab tier's in the same session) it skips and says so; `tests/run` runs it
in a pytest session of its own after the default tiers.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from mclab.lab import DEFAULT_NODES, Lab

LAB_TESTS = Path(__file__).resolve().parents[1] / "lab"
sys.path.insert(0, str(LAB_TESTS))  # the lab tier's helpers (_roles_helpers, _mail_flow, ...)
# the lab tier's LabHandle, under a name of its own (every conftest module is "conftest")
_spec = importlib.util.spec_from_file_location("mc_lab_conftest", LAB_TESTS / "conftest.py")
_lab_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lab_conftest)
LabHandle = _lab_conftest.LabHandle
lab_environment_problem = _lab_conftest.lab_environment_problem

GUESTS = ("mx1", "mx2")
#: pytest-timeout per seed test, its fixtures included (the converge from bare among them)
SEED_TIMEOUT = 5400


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.seed)
        # the first highstate of the guests alone takes about 30 min under TCG: the
        # project-wide 1800 s (pyproject) would kill the converge fixture mid-run
        item.add_marker(pytest.mark.timeout(SEED_TIMEOUT))


@pytest.fixture(scope="session")
def seed_lab():
    problem = lab_environment_problem()
    if problem:
        pytest.skip(problem)
    instance = Lab()
    state = instance.load_state()
    if state is not None and state.get("storage") != "drbd":
        pytest.skip("a shared_path lab is up: the seed tier needs `lab/lab up --storage drbd`")
    started_here = state is None
    if started_here:
        instance.up(list(DEFAULT_NODES), storage="drbd")
    yield LabHandle(instance)
    if started_here and not os.environ.get("MC_KEEP_LAB") and instance.load_state():
        instance.down()


@pytest.fixture(scope="session")
def converged(seed_lab):
    """The first highstate of the lab (from bare when the seed tier brought the lab up)."""
    from _roles_helpers import apply_all

    seed_lab.salt("*", "saltutil.sync_all", timeout=900)
    ret, seconds = apply_all(seed_lab, timeout=3600)
    print(f"\nseed: first highstate in {seconds:.0f} s")
    return ret
