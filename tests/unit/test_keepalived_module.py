"""Unit tests for _modules/keepalived.py: the pair's peer status from keepalived's instance
states (as the ha role's notify script writes them) and the config the role renders in the
lab (tests/fixtures/keepalived/mx1.keepalived.conf), and heartbeat.*'s hand-over to it."""

import pytest
from mc_unit_helpers import FIXTURES, load_loader_module
from salt.exceptions import CommandExecutionError

ka = load_loader_module("modules", "keepalived")
hb = load_loader_module("modules", "heartbeat")
CONF = (FIXTURES / "keepalived" / "mx1.keepalived.conf").read_text()


@pytest.fixture
def node(tmp_path, monkeypatch):
    """mx1 with keepalived running, the lab's config and a state directory."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    states = tmp_path / "states"
    states.mkdir()
    monkeypatch.setattr(ka, "CONF", str(conf))
    monkeypatch.setattr(ka, "STATE_DIR", str(states))
    monkeypatch.setattr(ka.os, "uname", lambda: type("U", (), {"nodename": "mx1"})())
    running = {"keepalived": True}
    monkeypatch.setattr(ka, "__salt__", {"service.status": lambda n: running[n]}, raising=False)
    return states, running


def test_both_instances_are_the_nodes(node):
    assert ka.nodes() == ["mx1", "mx2"]


@pytest.mark.parametrize(
    ("state", "status"),
    [("BACKUP", "active"), ("MASTER", "dead"), ("FAULT", "dead"), (None, "active")],
)
def test_peer_status_from_its_instance(node, state, status):
    states, _ = node
    if state:
        (states / "mc_mx2").write_text(f"{state}\n")
    assert ka.node_status("mx2") == status
    assert ka.node_status("mx1") == "active"


def test_unknown_node_and_stopped_daemon_raise(node):
    _, running = node
    with pytest.raises(CommandExecutionError, match="'mx9' is not a cluster node"):
        ka.node_status("mx9")
    running["keepalived"] = False
    assert ka.status() == {"running": False}
    with pytest.raises(CommandExecutionError, match="keepalived is not running"):
        ka.nodes()
    with pytest.raises(CommandExecutionError, match="cannot take over foreign"):
        ka.takeover("foreign")


def test_heartbeat_hands_over_with_mover_keepalived(node, monkeypatch):
    states, _ = node
    (states / "mc_mx2").write_text("MASTER\n")
    salt = {"keepalived.node_status": ka.node_status, "keepalived.status": ka.status}
    monkeypatch.setattr(hb, "__salt__", salt, raising=False)
    monkeypatch.setattr(hb, "__pillar__", {"ha": {"mover": "keepalived"}}, raising=False)
    assert hb.node_status("mx2") == "dead"
    assert hb.wait_node_status("mx2", "dead", timeout=0) == "dead"
    monkeypatch.setattr(hb, "__pillar__", {"ha": {"lookup": {"mover": "heartbeat"}}})
    assert hb._keepalived() is False
