"""The ha role's second mover (pillar ha:mover: keepalived, docs/keepalived.md), through
Salt's loader (no daemons):

- a bad mover, or bad keepalived settings, are refused naming the key;
- with mover keepalived each mail node renders one VRRPv3 instance per service IP, its own at
  the higher priority, unicast to the peer, and heartbeat is stopped (disabled) only after
  keepalived runs; with the default mover the highstate runs heartbeat and stops keepalived
  after it; the role's clean renders both layers' undo;
- the firewall opens VRRP (IP protocol 112) to the pair only.
"""

import pytest
from test_roles_support import pillar_copy, run_node

BAD = {
    "mover-unknown": (
        "ha: {mover: ucarp}",
        'ha:mover: must be heartbeat or keepalived (got "ucarp")',
    ),
    "advert-too-small": ("ha: {keepalived: {advert_int: 0.001}}", "ha:keepalived:advert_int"),
    "vrid-out-of-range": ("ha: {keepalived: {vrid_base: 300}}", "ha:keepalived:vrid_base"),
    "keepalived-typo": ("ha: {keepalived: {advert: 1}}", "ha:keepalived:advert"),
}
KEEPALIVED = "ha: {mover: keepalived}\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_mover_pillar_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors


@pytest.fixture(scope="module")
def keepalived_mx1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keepalived")
    calls = [["state.show_highstate"], ["templates"], ["state.show_sls", "ha.clean"]]
    return run_node(tmp, "mx1", calls, pillar_copy(tmp, KEEPALIVED))


@pytest.fixture(scope="module")
def heartbeat_mx1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("heartbeat")
    calls = [["state.show_highstate"], ["mailcluster_firewall.ruleset"]]
    return run_node(tmp, "mx1", calls, pillar_copy(tmp, None))


def _requires(body, module):
    for item in body.get(module, []):
        if isinstance(item, dict) and "require" in item:
            return item["require"]
    return []


def test_keepalived_conf_has_both_instances(keepalived_mx1):
    high, rendered, _clean = keepalived_mx1
    assert isinstance(high, dict), high
    conf = rendered["/etc/keepalived/keepalived.conf"]["text"]
    assert "vrrp_version 3" in conf
    for name, prio, vip in (("mc_mx1", 150, "10.88.0.111/24"), ("mc_mx2", 100, "10.88.0.112/24")):
        block = conf.split(f"vrrp_instance {name} {{", 1)[1].split("\n}", 1)[0]
        assert f"priority {prio}" in block
        assert f"{vip} dev eth0" in block
        assert "advert_int 0.1" in block
        assert "unicast_src_ip 10.88.0.11" in block
        assert "10.88.0.12" in block.split("unicast_peer", 1)[1]


def test_keepalived_mover_stops_heartbeat_after_keepalived_runs(keepalived_mx1):
    high, _rendered, _clean = keepalived_mx1
    dead = high["ha-service-heartbeat-service-dead"]
    assert {"sls": "ha.keepalived.service"} in _requires(dead, "service")
    assert "ha-keepalived-service-keepalived-service-running" in high
    assert "ha-service-heartbeat-service-running" not in high


def test_heartbeat_mover_stops_keepalived_after_heartbeat_runs(heartbeat_mx1):
    high, _rules = heartbeat_mx1
    dead = high["ha-service-keepalived-service-dead"]
    assert {"heartbeat": "ha-service-heartbeat-heartbeat-running"} in _requires(dead, "service")
    assert "ha-keepalived-service-keepalived-service-running" not in high
    put_back = high["ha-service-heartbeat-address-1-cmd-run"]["cmd"]
    assert any("ip addr replace 10.88.0.111/24 dev eth0" in str(i) for i in put_back), put_back


def test_clean_undoes_both_movers(keepalived_mx1):
    _high, _rendered, clean = keepalived_mx1
    assert "ha-clean-heartbeat-service-dead" in clean
    assert "ha-clean-keepalived-keepalived-service-dead" in clean


def test_firewall_opens_vrrp_to_the_pair_only(heartbeat_mx1):
    _high, rules = heartbeat_mx1
    vrrp = [r for r in rules["rules"] if "vrrp" in r]
    assert vrrp == ['ip saddr @ha_v4 meta l4proto vrrp accept comment "ha: vrrp"'], rules
