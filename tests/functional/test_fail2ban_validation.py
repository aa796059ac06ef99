"""The fail2ban role (issue 13.6) from pillar, without daemons.

- bad values of pillar ``fail2ban`` (maxretry 0, a ban time that is not a whole number of
  seconds, an ignoreip that is no address or network, a jail of an unknown role, a typo) are
  refused naming the key, and a highstate and the role's own SLS stop on one;
- a jail added by pillar without its filter, log or ports stops the role naming that jail's key;
- the rendered jails per node: the jails of the node's roles only (the others and Debian's sshd
  off), every cluster address and the lab host in ignoreip, the peer jail with the union of the
  node's ports, the event action on every jail but the peer jail; no role on a node without
  mail or web.
"""

import configparser
import ipaddress

import pytest
import yaml
from test_roles_support import pillar_copy, run_node

# (pillar merged into the lab pillar (YAML), text the error must contain)
BAD = {
    "maxretry-zero": ("fail2ban: {maxretry: 0}", "fail2ban:maxretry: must be >= 1 (got 0)"),
    "bantime-not-integer": (
        "fail2ban: {bantime: 1h}",
        'fail2ban:bantime: must be a whole number of seconds, 1 to 31536000 (one year) (got "1h")',
    ),
    "bantime-float": (
        "fail2ban: {bantime: 2.5}",
        "fail2ban:bantime: must be a whole number of seconds",
    ),
    "jail-findtime-zero": (
        "fail2ban: {jails: {dovecot: {findtime: 0}}}",
        "fail2ban:jails:dovecot:findtime: must be a whole number of seconds",
    ),
    "ignoreip-not-address": (
        "fail2ban: {ignoreip: [10.88.0.1, mail.example.test]}",
        "fail2ban:ignoreip:1: must be an IPv4/IPv6 address or network in CIDR notation",
    ),
    "ignoreip-bad-prefix": (
        "fail2ban: {ignoreip: [10.0.0.0/33]}",
        "fail2ban:ignoreip:0: must be an IPv4/IPv6 address or network",
    ),
    "jail-unknown-role": (
        "fail2ban: {jails: {dovecot: {roles: [dns_primary]}}}",
        'fail2ban:jails:dovecot:roles:0: must be one of "mail", "web"',
    ),
    "jail-port-range": (
        "fail2ban: {jails: {postfix-sasl: {ports: [25, 70000]}}}",
        "fail2ban:jails:postfix-sasl:ports:1: must be <= 65535",
    ),
    "banaction-iptables": (
        "fail2ban: {banaction: iptables-multiport}",
        'fail2ban:banaction: must be one of "nftables-multiport", "nftables-allports"',
    ),
    "typo": ("fail2ban: {maxretries: 3}", "fail2ban:maxretries: unknown key (allowed: enabled"),
    "lookup-type": (
        "fail2ban: {lookup: {findtime: ten}}",
        "fail2ban:lookup:findtime: must be a whole number of seconds",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors


def _text(result):
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        assert all(not v["changes"] for v in result.values())
        return "\n".join(v["comment"] for v in result.values())
    return "\n".join(result)  # SLS files refused to render: no state ran


def test_maxretry_zero_stops_the_highstate(tmp_path):
    extra = yaml.safe_load(BAD["maxretry-zero"][0])
    result, single = run_node(
        tmp_path,
        "mx1",
        [["state.apply", [], {"test": True}], ["state.show_sls", "fail2ban"]],
        pillar_copy(tmp_path, yaml.dump(extra)),
    )
    message = BAD["maxretry-zero"][1]
    assert message in _text(result)
    assert isinstance(single, list) and message in "\n".join(single), single


def test_a_jail_without_its_log_names_the_key(tmp_path):
    extra = "fail2ban:\n  jails:\n    managesieve:\n      roles: [mail]\n      filter: sieve\n"
    (single,) = run_node(
        tmp_path, "mx2", [["state.show_sls", "fail2ban"]], pillar_copy(tmp_path, extra)
    )
    assert isinstance(single, list), single
    assert "fail2ban:jails:managesieve:logpath: missing (the jail runs on mx2" in single[0]


def _jails(tmp_path, node):
    res = run_node(tmp_path, node, [["state.show_top"], ["templates"]])
    top, rendered = res[0]["base"], res[1]
    if "fail2ban" not in top:
        return top, None, None
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(rendered["/etc/fail2ban/jail.d/mailcluster.local"]["text"])
    action = rendered["/etc/fail2ban/action.d/mailcluster-event.conf"]["text"]
    return top, parser, action


LAB_ADDRESSES = [
    "10.88.0.2",
    "10.88.0.11",
    "10.88.0.111",
    "10.88.0.12",
    "10.88.0.112",
    "10.88.0.21",
    "10.88.0.22",
    "10.88.0.1",  # the lab host (pillar/fail2ban.sls)
]


@pytest.mark.parametrize(
    "node,jails,ports",
    [
        ("mx1", ["dovecot", "postfix-sasl"], "25,110,143,465,587,993,995,4190"),
        ("mx2", ["dovecot", "postfix-sasl"], "25,110,143,465,587,993,995,4190"),
        ("ns1", ["postfixadmin", "roundcube-auth"], "80,443"),
    ],
)
def test_jails_per_node(tmp_path, node, jails, ports):
    top, jail, action = _jails(tmp_path, node)
    assert top.index("fail2ban") > top.index("mail" if node.startswith("mx") else "web")
    enabled = sorted(s for s in jail.sections() if jail[s].get("enabled") == "true")
    assert enabled == sorted([*jails, "mailcluster-peer"])
    off = {"dovecot", "postfix-sasl", "postfixadmin", "roundcube-auth", "sshd"} - set(jails)
    assert all(jail[s]["enabled"] == "false" for s in off)
    ignored = jail["DEFAULT"]["ignoreip"].split()
    assert set(LAB_ADDRESSES) <= set(ignored)
    assert "10.88.0.250" not in ignored  # the test's attacker
    for net in ignored:
        ipaddress.ip_network(net)
    assert jail["DEFAULT"]["bantime"] == "30" and jail["DEFAULT"]["maxretry"] == "3"
    for name in jails:
        assert "mailcluster_peer_action" in jail[name]["action"], name
    assert jail["mailcluster-peer"]["port"] == ports
    assert jail["mailcluster-peer"]["filter"] == ""
    assert "mailcluster_peer_action" not in jail["mailcluster-peer"]["action"]
    assert "event.send <tag>/ban jail=<name> ip=<ip>" in action
    assert "norestored = 1" in action


@pytest.mark.parametrize("node", ["salt", "ns2"])
def test_no_fail2ban_without_mail_or_web(tmp_path, node):
    top, jail, _ = _jails(tmp_path, node)
    assert "fail2ban" not in top and jail is None


def test_disabled_role_is_removed_in_reverse(tmp_path):
    """``fail2ban:enabled: false``: the role's init is its clean (service stopped first, which
    removes fail2ban's nftables table, then the role's files, then the package)."""
    (high,) = run_node(
        tmp_path, "mx1", [["state.show_sls", "fail2ban"]], pillar_copy(tmp_path, OFF)
    )
    assert isinstance(high, dict), high
    assert sorted(high) == [
        "fail2ban-config-clean-files-file-absent",
        "fail2ban-package-clean-pkgs-pkg-removed",
        "fail2ban-service-clean-service-dead",
    ]
    files = high["fail2ban-config-clean-files-file-absent"]["file"]
    names = next(a["names"] for a in files if isinstance(a, dict) and "names" in a)
    assert "/etc/fail2ban/jail.d/mailcluster.local" in names
    requisites = str(high["fail2ban-package-clean-pkgs-pkg-removed"])
    assert "fail2ban.config.clean" in requisites


OFF = "fail2ban: {enabled: false}\n"
