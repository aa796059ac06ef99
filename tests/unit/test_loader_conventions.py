"""House rules for our loader modules (style guide, section b)."""

import inspect

import pytest
from mc_unit_helpers import REPO, load_loader_module

MODULES = ["drbd", "o2cb", "heartbeat"]


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_has_a_cli_example(name):
    module = load_loader_module("modules", name)
    missing = [
        fname
        for fname, func in inspect.getmembers(module, inspect.isfunction)
        if not fname.startswith("_")
        and func.__module__ == module.__name__
        and "CLI Example:" not in (func.__doc__ or "")
    ]
    assert missing == []


@pytest.mark.parametrize(
    "path",
    [
        *(f"_modules/{n}.py" for n in MODULES),
        *(f"_states/{n}.py" for n in MODULES),
        "_grains/mailcluster_ha.py",
        "_beacons/mailcluster_ha.py",
    ],
)
def test_no_utils_dunder(path):
    assert "__utils__" not in (REPO / path).read_text()


@pytest.mark.parametrize("name", MODULES)
def test_states_refuse_to_load_without_their_module(name):
    state = load_loader_module("states", name)
    state.__salt__ = {}
    ok, reason = state.__virtual__()
    assert ok is False
    assert name in reason
