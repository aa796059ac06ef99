"""Unit tests for _modules/heartbeat.py, fed with real heartbeat 3.0.6 output."""

import os

import pytest
from mc_recordings import heartbeat_node
from mc_unit_helpers import (
    FIXTURES,
    OK,
    FakeRunAll,
    command_module_dunders,
    load_loader_module,
    output,
)
from salt.exceptions import CommandExecutionError

hb = load_loader_module("modules", "heartbeat")
parse = load_loader_module("modules", "heartbeat_parse")

F = "heartbeat/"
HA_CF = (FIXTURES / "heartbeat" / "config.ha.cf").read_text()
HARESOURCES = (FIXTURES / "heartbeat" / "config.haresources").read_text()
AUTHKEYS = "auth 1\n1 sha1 mailcluster-lab-secret\n"


@pytest.mark.parametrize(
    ("fixture", "running"),
    [
        ("02-running.mx1.cl_status_hbstatus.txt", True),
        ("05-peer-dead.mx1.cl_status_hbstatus.txt", True),
        ("01-stopped.mx1.cl_status_hbstatus.txt", False),
        ("06-stopped-after-run.mx1.cl_status_hbstatus.txt", False),
    ],
)
def test_parse_hbstatus(fixture, running):
    res = FakeRunAll().add("x", F + fixture)("x")
    assert parse.hbstatus(res["stdout"] + res["stderr"], res["retcode"]) is running


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("02-running.mx1.cl_status_nodestatus_mx2.txt", "active"),
        ("05-peer-dead.mx1.cl_status_nodestatus_mx2.txt", "dead"),
        ("02-running.mx1.cl_status_nodestatus_nosuch.txt", None),
        ("01-stopped.mx1.cl_status_nodestatus_mx2.txt", None),
    ],
)
def test_parse_nodestatus(fixture, expected):
    assert parse.nodestatus(output(F + fixture)) == expected


def test_parse_ip_addrs_takeover():
    assert parse.ip_addrs(output(F + "03-takeover.mx1.ip_o_addr_show.txt")) == {
        "127.0.0.1": "lo",
        "::1": "lo",
        "10.89.7.11": "eth0",
        "10.89.7.100": "eth0",
        "10.89.7.101": "eth0",
        next(
            line.split()[3].split("/")[0]
            for line in output(F + "03-takeover.mx1.ip_o_addr_show.txt").splitlines()
            if "fe80" in line
        ): "eth0",
    }


def test_parse_config_files():
    cf = parse.ha_cf(HA_CF)
    assert cf["nodes"] == ["mx1", "mx2"]
    assert cf["directives"]["ucast"] == ["eth0 10.89.7.11", "eth0 10.89.7.12"]
    assert parse.haresources(HARESOURCES) == [
        {"node": "mx1", "resources": ["IPaddr2::10.89.7.100/24/eth0"], "ips": ["10.89.7.100"]},
        {"node": "mx2", "resources": ["IPaddr2::10.89.7.101/24/eth0"], "ips": ["10.89.7.101"]},
    ]
    assert parse.haresources("mx1 10.0.0.5 \\\n   postfix # comment\n") == [
        {"node": "mx1", "resources": ["10.0.0.5", "postfix"], "ips": ["10.0.0.5"]}
    ]


def test_time_values():
    assert parse.time_ms("200ms") == 200
    assert parse.time_ms("2") == 2000
    assert parse.time_ms("1.5") == 1500
    assert parse.time_ms("soon") is None


def test_check_real_config_is_valid():
    assert parse.config_errors(HA_CF, HARESOURCES, AUTHKEYS, 0o600, "mx1") == []


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda c: {**c, "mode": 0o644}, "authkeys has mode 644; heartbeat requires 600"),
        (lambda c: {**c, "node": "mx9"}, "does not list this node (mx9)"),
        (lambda c: {**c, "ha_cf": c["ha_cf"].replace("crm no", "crm yes")}, "crm yes"),
        (
            lambda c: {**c, "ha_cf": c["ha_cf"].replace("warntime 1", "warntime 5")},
            "warntime must be shorter than deadtime",
        ),
        (lambda c: {**c, "ha_cf": c["ha_cf"].replace("ucast", "#ucast")}, "no communication"),
        (lambda c: {**c, "haresources": "mx3 IPaddr2::10.0.0.1\n"}, "'mx3' is not a node"),
        (lambda c: {**c, "authkeys": "auth 2\n1 sha1 x\n"}, "'auth 2' names no key line"),
        (lambda c: {**c, "authkeys": "auth 1\n1 sha1\n"}, "method sha1 needs a secret"),
        (lambda c: {**c, "authkeys": None}, "authkeys is missing"),
    ],
)
def test_check_finds_errors(mutate, error):
    cfg = mutate(
        {"ha_cf": HA_CF, "haresources": HARESOURCES, "authkeys": AUTHKEYS, "mode": 0o600}
        | {"node": "mx1"}
    )
    errors = parse.config_errors(
        cfg["ha_cf"], cfg["haresources"], cfg["authkeys"], cfg["mode"], cfg["node"]
    )
    assert any(error in item for item in errors), errors


# --- through __salt__ -----------------------------------------------------------------


@pytest.fixture
def configure_loader_modules(run_all):
    return command_module_dunders(hb, "heartbeat_parse", run_all)


def _node(run_all, stage, node="mx1"):
    for cmd, recording in heartbeat_node(stage, node).items():
        run_all.add(cmd, recording)


def test_running_cluster(run_all):
    _node(run_all, "02-running")
    assert hb.status() == {"running": True}
    assert hb.nodes() == ["mx2", "mx1"]
    assert hb.nodes_status() == {"mx2": "active", "mx1": "active"}
    assert hb.resource_status() == "local"


def test_peer_dead(run_all):
    _node(run_all, "05-peer-dead")
    assert hb.node_status("mx2") == "dead"
    assert hb.resource_status() == "all"


def test_unknown_node_is_named(run_all):
    _node(run_all, "02-running")
    with pytest.raises(
        CommandExecutionError, match="heartbeat node 'nosuch' is not a cluster node"
    ):
        hb.node_status("nosuch")


def test_stopped(run_all):
    _node(run_all, "01-stopped")
    assert hb.status() == {"running": False}
    with pytest.raises(CommandExecutionError, match="Cannot signon with heartbeat") as exc:
        hb.nodes()
    assert "cl_status listnodes" in str(exc.value)
    with pytest.raises(CommandExecutionError, match="Cannot signon"):
        hb.node_status("mx2")


@pytest.fixture
def haresources_file(tmp_path):
    path = tmp_path / "haresources"
    path.write_text(HARESOURCES)
    return str(path)


@pytest.mark.parametrize(
    ("stage", "node", "expected_held", "local", "foreign", "everything"),
    [
        ("02-running", "mx1", {"mx1": True, "mx2": False}, True, False, False),
        ("02-running", "mx2", {"mx1": False, "mx2": True}, True, False, False),
        ("03-takeover", "mx1", {"mx1": True, "mx2": True}, True, True, True),
        ("03-takeover", "mx2", {"mx1": False, "mx2": False}, False, False, False),
        ("05-peer-dead", "mx1", {"mx1": True, "mx2": True}, True, True, True),
        ("06-stopped-after-run", "mx1", {"mx1": False, "mx2": False}, False, False, False),
    ],
)
def test_held_from_real_addresses(
    run_all, haresources_file, stage, node, expected_held, local, foreign, everything
):
    """rscstatus says 'local' on both nodes in 02: held() answers from the addresses."""
    _node(run_all, stage, node)
    held = hb.held(haresources_file)
    assert {group: entry["held"] for group, entry in held.items()} == expected_held
    assert held[node]["preferred"] is True
    assert hb.holds("local", haresources_file) is local
    assert hb.holds("foreign", haresources_file) is foreign
    assert hb.holds("all", haresources_file) is everything


def test_takeover_and_standby(run_all, monkeypatch):
    monkeypatch.setattr(hb, "_tool", lambda name: f"/usr/share/heartbeat/{name}")
    run_all.add(
        "/usr/share/heartbeat/hb_takeover foreign", F + "03-takeover.mx1.hb_takeover_foreign.txt"
    )
    run_all.add(
        "/usr/share/heartbeat/hb_standby foreign", F + "04-standby.mx1.hb_standby_foreign.txt"
    )
    assert hb.takeover("foreign") is True
    assert hb.standby("foreign") is True
    with pytest.raises(CommandExecutionError, match="which must be"):
        hb.takeover("everything")


def test_check_config_files(run_all, tmp_path):
    run_all.add("uname -n", {"stdout": "mx1\n", "stderr": "", "retcode": 0})
    (tmp_path / "ha.cf").write_text(HA_CF)
    (tmp_path / "haresources").write_text(HARESOURCES)
    keys = tmp_path / "authkeys"
    keys.write_text(AUTHKEYS)
    os.chmod(keys, 0o600)
    kwargs = {
        "ha_cf": str(tmp_path / "ha.cf"),
        "haresources": str(tmp_path / "haresources"),
        "authkeys": str(keys),
    }
    assert hb.check_config(**kwargs) == {"valid": True, "errors": [], "nodes": ["mx1", "mx2"]}
    os.chmod(keys, 0o644)
    bad = hb.check_config(**kwargs)
    assert bad["valid"] is False
    assert bad["errors"] == ["authkeys has mode 644; heartbeat requires 600"]


def test_start(run_all):
    run_all.add("service heartbeat start", OK)
    assert hb.start() is True


def test_virtual_without_binary(monkeypatch):
    monkeypatch.setattr(hb.salt.utils.path, "which", lambda _name: None)
    assert hb.__virtual__() == (False, "cl_status not found: install heartbeat")


def test_wait_node_status_polls_until_the_peer_is_dead(run_all):
    """Heartbeat says active twice, then dead (the recordings of a running pair and of the
    peer's death): one call waits it out."""
    active = F + "02-running.mx1.cl_status_nodestatus_mx2.txt"
    dead = F + "05-peer-dead.mx1.cl_status_nodestatus_mx2.txt"
    run_all.add("cl_status nodestatus mx2", active, active, dead)
    assert hb.wait_node_status("mx2", status="dead", timeout=5, interval=0.01) == "dead"
    assert run_all.calls.count("cl_status nodestatus mx2") == 3


def test_wait_node_status_gives_up_with_the_last_status(run_all):
    run_all.add("cl_status nodestatus mx2", F + "02-running.mx1.cl_status_nodestatus_mx2.txt")
    assert hb.wait_node_status("mx2", timeout=0.1, interval=0.02) == "active"
    assert run_all.calls.count("cl_status nodestatus mx2") >= 2


def test_wait_node_status_rejects_a_bad_timeout(run_all):
    with pytest.raises(CommandExecutionError, match="timeout and interval must be numbers"):
        hb.wait_node_status("mx2", timeout="soon")
