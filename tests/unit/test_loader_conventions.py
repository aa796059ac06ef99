"""House rules for our loader modules (style guide, section b)."""

import ast
import inspect

import pytest
from mc_unit_helpers import REPO, load_loader_module

STATES = ["drbd", "o2cb", "heartbeat"]
# the execution modules: the three the states use, and the parsers they reach through __salt__
MODULES = [*STATES, *(f"{name}_parse" for name in STATES)]


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
        *(f"_states/{n}.py" for n in [*STATES, "mc_flow"]),
        "_grains/mailcluster_ha.py",
        "_beacons/mailcluster_ha.py",
    ],
)
def test_no_utils_dunder(path):
    assert "__utils__" not in (REPO / path).read_text()


@pytest.mark.parametrize("name", STATES)
def test_states_refuse_to_load_without_their_module(name):
    state = load_loader_module("states", name)
    state.__salt__ = {}
    ok, reason = state.__virtual__()
    assert ok is False
    assert name in reason


@pytest.mark.parametrize("name", STATES)
def test_parsers_run_no_command_and_read_no_file(name):
    """Parsing apart from command calls: the parser modules get text and return data."""
    tree = ast.parse((REPO / "_modules" / f"{name}_parse.py").read_text())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    imports = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert names.isdisjoint({"__salt__", "__context__", "__grains__", "open"}), names
    assert imports <= {"re"}, imports


@pytest.mark.parametrize("name", STATES)
def test_states_share_one_skeleton(name):
    """Every state function of ours hands its flow to mc_flow.converge (docs/modules.md)."""
    state = load_loader_module("states", name)
    text = (REPO / "_states" / f"{name}.py").read_text()
    public = [
        fname
        for fname, func in inspect.getmembers(state, inspect.isfunction)
        if not fname.startswith("_") and func.__module__ == state.__name__
    ]
    assert text.count('__states__["mc_flow.converge"]') == len(public)
    assert '"result": False, "changes": {}' not in text  # no ret skeleton of its own


@pytest.mark.parametrize("name", STATES)
def test_modules_refuse_to_load_without_their_parser(name, monkeypatch):
    module = load_loader_module("modules", name)
    monkeypatch.setattr(module.salt.utils.path, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(module, "__salt__", {}, raising=False)
    assert module.__virtual__() == (False, f"{name} needs {name}_parse (module not loaded)")


@pytest.mark.parametrize("name", STATES)
def test_states_refuse_to_load_without_the_skeleton(name, monkeypatch):
    state = load_loader_module("states", name)
    needed = {"drbd": "drbd.status", "o2cb": "o2cb.list_clusters", "heartbeat": "heartbeat.status"}
    monkeypatch.setattr(state, "__salt__", {needed[name]: None}, raising=False)
    monkeypatch.setattr(state, "__states__", {}, raising=False)
    ok, reason = state.__virtual__()
    assert ok is False
    assert "mc_flow" in reason
