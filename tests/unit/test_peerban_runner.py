"""The fail2ban peer ban's checks on the master (_runners/mailcluster_peerban.py, through Salt's
runner loader as on the master): any accepted minion can fire any event, so only a node with a
fail2ban role, reporting a jail it runs, about an address the cluster may ban, gets the address
banned on the other nodes. The ban itself runs for real in tests/lab/test_fail2ban.py."""

import pytest
import yaml
from mc_unit_helpers import REPO, runner_loader

BAN = "mailcluster/fail2ban/ban"


@pytest.fixture
def runners(tmp_path):
    return runner_loader(tmp_path)


@pytest.fixture
def pillar(lab_pillar):
    lab_pillar.update(yaml.safe_load((REPO / "pillar" / "fail2ban.sls").read_text()))
    return lab_pillar


def _event(origin, jail, ip):
    return {"id": origin, "data": {"jail": jail, "ip": ip}, "cmd": "_minion_event"}


def test_a_mail_nodes_ban_goes_to_the_other_fail2ban_nodes(runners, pillar):
    plan, reason = runners["mailcluster_peerban.verify"](
        BAN, _event("mx1", "postfix-sasl", "192.0.2.10"), pillar
    )
    assert reason is None
    assert plan == {
        "action": "ban",
        "origin": "mx1",
        "jail": "postfix-sasl",
        "ip": "192.0.2.10",
        "peer_jail": "mailcluster-peer",
        "peers": ["mx2", "ns1"],
    }
    plan, _ = runners["mailcluster_peerban.verify"](
        "mailcluster/fail2ban/unban", _event("ns1", "postfixadmin", "2001:db8::7"), pillar
    )
    assert plan["action"] == "unban" and plan["peers"] == ["mx1", "mx2"]


@pytest.mark.parametrize(
    "tag,event,reason",
    [
        ("mailcluster/fail2ban/refused", _event("mx1", "dovecot", "192.0.2.1"), "neither"),
        (BAN, _event("intruder", "dovecot", "192.0.2.1"), "'intruder' is not a node"),
        (BAN, {"data": {"jail": "dovecot", "ip": "192.0.2.1"}}, "None is not a node"),
        (BAN, _event("ns2", "dovecot", "192.0.2.1"), "ns2 does not run jail dovecot"),
        (BAN, _event("ns1", "dovecot", "192.0.2.1"), "ns1 does not run jail dovecot"),
        (BAN, _event("mx1", "sshd", "192.0.2.1"), "jail 'sshd' is not a jail"),
        (BAN, _event("mx1", "nosuch", "192.0.2.1"), "jail 'nosuch' is not a jail"),
        (BAN, _event("mx1", "dovecot", "mx2.cluster.test"), "is not an IP address"),
        (BAN, _event("mx1", "dovecot", "127.0.0.1"), "loopback"),
        (BAN, _event("mx1", "dovecot", "0.0.0.0"), "unspecified"),
        (BAN, _event("mx1", "dovecot", "10.88.0.12"), "10.88.0.12 is a cluster address"),
        (BAN, _event("mx1", "dovecot", "10.88.0.112"), "10.88.0.112 is a cluster address"),
        (BAN, _event("ns1", "roundcube-auth", "10.88.0.2"), "10.88.0.2 is a cluster address"),
        # the lab host, pillar fail2ban:ignoreip
        (BAN, _event("mx2", "dovecot", "10.88.0.1"), "in fail2ban:ignoreip"),
    ],
)
def test_refused(runners, pillar, tag, event, reason):
    plan, why = runners["mailcluster_peerban.verify"](tag, event, pillar)
    assert plan is None
    assert reason in why, why


def test_off_by_pillar(runners, pillar):
    pillar["fail2ban"]["peer_ban"] = {"enabled": False}
    plan, why = runners["mailcluster_peerban.verify"](
        BAN, _event("mx1", "dovecot", "192.0.2.1"), pillar
    )
    assert plan is None and "peer_ban:enabled is false" in why


def test_settings_stack_defaults_lookup_and_pillar(runners, pillar):
    pillar["fail2ban"]["lookup"] = {"maxretry": 9, "bantime": 60}
    conf = runners["mailcluster_peerban.settings"](pillar)
    assert conf["maxretry"] == 3  # pillar over lookup
    assert conf["bantime"] == 30
    assert conf["findtime"] == 120
    assert conf["jails"]["dovecot"]["roles"] == ["mail"]  # defaults.yaml
