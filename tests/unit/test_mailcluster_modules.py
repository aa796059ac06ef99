"""House rules for the mailcluster modules (style guide, section b): one concern per module,
code shared through ``__salt__`` only (no ``__utils__``, no importing one another)."""

import inspect
import re

import pytest
from mc_unit_helpers import REPO, load_loader_module

#: every mailcluster* module, so that a new one is held to the same rules without an edit here
MODULES = sorted(p.stem for p in (REPO / "_modules").glob("mailcluster*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_has_a_cli_example(name):
    module = load_loader_module("modules", name)
    public = [
        (fname, func)
        for fname, func in inspect.getmembers(module, inspect.isfunction)
        if not fname.startswith("_") and func.__module__ == module.__name__
    ]
    assert public
    missing = [fname for fname, func in public if "CLI Example:" not in (func.__doc__ or "")]
    assert missing == []
    # and the example calls the function by its loader name
    wrong = [f for f, func in public if f"{module.__virtualname__}.{f}" not in func.__doc__]
    assert wrong == []


@pytest.mark.parametrize("name", MODULES)
def test_shared_code_goes_through_salt_dunder_only(name):
    text = (REPO / "_modules" / f"{name}.py").read_text()
    assert "__utils__" not in text
    assert not re.search(r"\bimportlib\b|\bsys\.path\b|^\s*import mailcluster", text, re.M)
    assert not re.search(r"^\s*from\s+(\.|_modules|mailcluster)", text, re.M)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_stays_small(name):
    assert len((REPO / "_modules" / f"{name}.py").read_text().splitlines()) <= 500


def test_states_refuse_to_load_without_the_functions_they_call():
    state = load_loader_module("states", "mailcluster")
    everything = dict.fromkeys(state.NEEDS, object())
    state.__salt__ = everything
    state.__states__ = {"mc_flow.converge": object()}
    assert state.__virtual__() == "mailcluster"
    state.__states__ = {}
    ok, reason = state.__virtual__()
    assert ok is False
    assert "mc_flow" in reason
    state.__states__ = {"mc_flow.converge": object()}
    state.__salt__ = {k: v for k, v in everything.items() if not k.startswith("mailcluster_db.")}
    ok, reason = state.__virtual__()
    assert ok is False
    assert "mailcluster_db.db_sync" in reason and "mailcluster_dns" not in reason
