"""Render every role against the lab pillar, masterless, and pin the per-role map data.

- top.sls gives each node the SLS of its pillar roles;
- `state.show_highstate` renders every role of every node without errors, with state IDs that
  start with their role and carry no paths;
- every Jinja template of a `file.managed` renders with the context its state passes;
- `mailcluster_map.mapdata` per node and role equals the golden YAML under tests/lab/golden/mapdata
  (set MC_UPDATE_GOLDEN=1 to rewrite them, then review the diff).
"""

import os
import pathlib

import pytest
import yaml
from test_roles_support import NODES, REPO, run_node

GOLDEN = REPO / "tests" / "lab" / "golden" / "mapdata"

BASE_TOP = ["common.pillar", "common", "selfheal.watchdog", "firewall"]
MAIL_TOP = [*BASE_TOP, "storage", "mail", "ha", "selfheal", "graphs"]
EXPECTED_TOP = {
    # the CA first on the master (salt/ca): the other nodes' certificates wait for it
    # acme.pebble: the lab's test ACME CA (pillar acme:pebble:enabled); acme: the ACME
    # certificates of the nodes that serve TLS to users (pillar acme:server)
    "salt": ["common.pillar", "ca", *BASE_TOP[1:], "acme.pebble", "backup"],
    "mx1": [*MAIL_TOP, "fail2ban", "acme", "backup"],
    "mx2": [*MAIL_TOP, "fail2ban", "acme", "backup"],
    "ns1": [*BASE_TOP, "db.primary", "dns.primary", "web", "fail2ban", "acme", "backup"],
    "ns2": [*BASE_TOP, "db.replica", "dns.secondary"],
}
MAP_ROLES = {
    "salt": ["common", "ca"],
    "mx1": ["common", "mail", "ha", "graphs", "rspamd"],
    "mx2": ["common", "mail", "ha", "graphs", "rspamd"],
    "ns1": ["common", "db", "dns", "web"],
    "ns2": ["common", "db", "dns"],
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Per node, in its own process: top, highstate, rendered templates, validation, maps."""
    out = {}
    for node in NODES:
        calls = [
            ["state.show_top"],
            ["mailcluster.top_sls"],
            ["mailcluster.validate"],
            ["state.show_highstate"],
            ["templates"],
        ]
        for role in MAP_ROLES[node]:
            defaults = yaml.safe_load(
                (REPO / "salt" / role / "parameters" / "defaults.yaml").read_text()
            )
            calls.append(["mailcluster_map.mapdata", role, defaults])
        calls += [["state.show_sls", f"{role}.clean"] for role in MAP_ROLES[node]]
        res = run_node(tmp_path_factory.mktemp(node), node, calls)
        n_maps = len(MAP_ROLES[node])
        out[node] = {
            "top": res[0],
            "top_sls": res[1],
            "errors": res[2],
            "high": res[3],
            "templates": {k: v["text"] for k, v in res[4].items()},
            "maps": dict(zip(MAP_ROLES[node], res[5 : 5 + n_maps], strict=True)),
            "clean": dict(zip(MAP_ROLES[node], res[5 + n_maps :], strict=True)),
        }
    return out


@pytest.mark.parametrize("node", NODES)
def test_top_follows_pillar_roles(reports, node):
    assert reports[node]["top"] == {"base": EXPECTED_TOP[node]}
    assert reports[node]["top_sls"] == EXPECTED_TOP[node]
    assert reports[node]["errors"] == []


@pytest.mark.parametrize("node", NODES)
def test_highstate_renders(reports, node):
    high = reports[node]["high"]
    assert isinstance(high, dict), high
    sls_seen = {v["__sls__"] for v in high.values()}
    for sls in EXPECTED_TOP[node]:
        role = sls.split(".")[0]
        assert any(s == role or s.startswith(role + ".") for s in sls_seen), sls
    for state_id, body in high.items():
        role = body["__sls__"].split(".")[0]
        if role == "storage":
            continue  # not this suite's role
        assert state_id.startswith(role + "-"), state_id
        assert "/" not in state_id, state_id


@pytest.mark.parametrize("node", NODES)
def test_clean_renders(reports, node):
    for role, high in reports[node]["clean"].items():
        assert isinstance(high, dict) and high, (role, high)
        assert all(k.startswith(f"{role}-clean-") for k in high), list(high)


@pytest.mark.parametrize("node", NODES)
def test_templates_render(reports, node):
    rendered = reports[node]["templates"]
    assert rendered
    for name, text in rendered.items():
        assert isinstance(text, str) and "Traceback" not in text, (name, text)
    if node == "mx1":
        main_cf = rendered["/etc/postfix/main.cf"]
        assert "virtual_transport = lmtp:unix:private/dovecot-lmtp" in main_cf
        assert "myhostname = mx1.cluster.test" in main_cf
        # rspamd as the milter; a dead one lets mail through (docs/spam-dkim.md)
        assert "smtpd_milters = inet:127.0.0.1:11332" in main_cf
        assert "milter_default_action = accept" in main_cf
        assert "greylist = null;" in rendered["/etc/rspamd/local.d/actions.conf"]
        sql = rendered["/etc/postfix/sql/virtual_mailboxes.cf"]
        assert "hosts = 10.88.0.21" in sql  # dc1: nearest DB is the primary
        assert "ucast eth0 10.88.0.12" in rendered["/etc/ha.d/ha.cf"]
        assert "keepalive 200ms" in rendered["/etc/ha.d/ha.cf"]
        assert "mx1 IPaddr2::10.88.0.111/24/eth0" in rendered["/etc/ha.d/haresources"]
        assert "mx2 IPaddr2::10.88.0.112/24/eth0" in rendered["/etc/ha.d/haresources"]
    if node == "mx2":
        sql = rendered["/etc/postfix/sql/virtual_mailboxes.cf"]
        assert "hosts = 10.88.0.22 10.88.0.21" in sql  # dc2: replica first, then primary
    if node == "ns1":
        local = rendered["/etc/bind/named.conf.local"]
        assert 'zone "example.test"' in local and "type primary;" in local
        assert "also-notify { 10.88.0.22; };" in local
        assert "server_id = 1" in rendered["/etc/mysql/mariadb.conf.d/60-mailcluster.cnf"]
    if node == "ns2":
        assert "type secondary;" in rendered["/etc/bind/named.conf.local"]
        cnf = rendered["/etc/mysql/mariadb.conf.d/60-mailcluster.cnf"]
        assert "read_only = ON" in cnf and "server_id = 2" in cnf
    if node == "salt":
        hosts = rendered["/etc/hosts"]
        assert "10.88.0.111\tmx1-svc.cluster.test mx1-svc" in hosts
        assert "nameserver 10.88.0.21" in rendered["/etc/resolv.conf"]


@pytest.mark.parametrize(
    "node,role", [(n, r) for n in NODES for r in MAP_ROLES[n]], ids=lambda v: str(v)
)
def test_mapdata_snapshot(reports, node, role):
    data = reports[node]["maps"][role]
    golden = GOLDEN / node / f"{role}.yaml"
    dumped = yaml.safe_dump(data, sort_keys=True, default_flow_style=False)
    if os.environ.get("MC_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dumped)
    assert yaml.safe_load(golden.read_text()) == yaml.safe_load(dumped), (
        f"map of {role} on {node} changed: MC_UPDATE_GOLDEN=1 rewrites {golden}"
    )


def test_orchestration_renders(tmp_path):
    (rendered,) = run_node(
        tmp_path, "salt", [["slsutil.renderer", str(REPO / "salt" / "orch" / "cluster.sls")]]
    )
    order = [k for k in rendered if k.endswith("-salt-state")]
    assert order[:5] == [
        "orch-cluster-ca-salt-state",
        "orch-cluster-common-salt-state",
        "orch-cluster-db-primary-salt-state",
        "orch-cluster-db-replica-salt-state",
        "orch-cluster-dns-primary-salt-state",
    ]
    assert order[-1] == "orch-cluster-highstate-salt-state"
    assert pathlib.Path(REPO / "pillar" / "node.sls").exists()
