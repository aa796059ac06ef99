"""The firewall role in the nspawn lab: world ports open, cluster ports for cluster nodes only.

The host (10.88.0.1) is on the lab network but is no cluster node: it stands for the outside.
A TCP probe tells three outcomes apart: ``open`` (connected), ``refused`` (a RST: the firewall
let it through, nothing listens) and ``filtered`` (no answer: dropped). Most cluster ports are
probed where something listens or where a RST would come without the firewall, so a drop is
the firewall's doing. Heartbeat's UDP port is checked on our drop counter (heartbeat answers
nothing either way) and by heartbeat itself seeing its peer.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from _roles_helpers import summarize
from checks import nspawn_host

pytestmark = pytest.mark.lab

SUBNET = os.environ.get("MC_LAB_SUBNET", "10.88.0")
IP = {
    "salt": f"{SUBNET}.2",
    "mx1": f"{SUBNET}.11",
    "mx2": f"{SUBNET}.12",
    "ns1": f"{SUBNET}.21",
    "ns2": f"{SUBNET}.22",
    "mx1-svc": f"{SUBNET}.111",
    "mx2-svc": f"{SUBNET}.112",
}
NODES = ("salt", "mx1", "mx2", "ns1", "ns2")
VENV_PY = f"{os.environ.get('MC_VENV', '/opt/mc-venv')}/bin/python"
TIMEOUT = 1.5

# run in a node with the venv's python: argv[1] a JSON list of [host, port], argv[2] the timeout
PROBE = """
import json, socket, sys
out = []
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=float(sys.argv[2])).close()
        out.append("open")
    except ConnectionRefusedError:
        out.append("refused")
    except OSError:
        out.append("filtered")
print(json.dumps(out))
"""

AXFR = """
import json, sys
import dns.query, dns.zone
zone = dns.zone.from_xfr(dns.query.xfr(sys.argv[1], sys.argv[2], timeout=5, lifetime=10))
print(json.dumps(len(zone.nodes)))
"""


def probe(host: str, port: int) -> str:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "filtered"


def probe_from(cluster, node: str, targets: list[tuple[str, int]]) -> dict:
    proc = cluster.run(node, VENV_PY, "-c", PROBE, json.dumps(targets), str(TIMEOUT), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(zip([f"{h}:{p}" for h, p in targets], json.loads(proc.stdout), strict=True))


def dropped(cluster, node: str) -> int:
    proc = cluster.run(node, "nft", "-j", "list", "counter", "inet", "mailcluster", "dropped")
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)["nftables"]
    return next(i["counter"]["packets"] for i in items if "counter" in i)


@pytest.fixture(scope="module")
def cluster(lab):
    """Every node with the firewall applied (twice: the second must change nothing)."""
    first = lab.salt_json("*", "state.apply", "firewall", timeout=600)
    failed, _ = summarize(first)
    assert not failed, failed
    assert set(first) == set(NODES), first
    return lab


def test_second_apply_changes_nothing(cluster):
    for test in ("False", "True"):
        ret = cluster.salt_json("*", "state.apply", "firewall", f"test={test}", timeout=600)
        failed, changed = summarize(ret)
        assert not failed and changed == 0, (test, failed, ret)
    for node in NODES:
        assert nspawn_host(node, cluster.lab.name).service("nftables").is_enabled, node


def test_world_ports_open_from_outside(cluster):
    want = {
        (IP["mx1"], 25): "open",
        (IP["mx1-svc"], 25): "open",
        (IP["mx2-svc"], 587): "open",
        (IP["mx1"], 143): "open",
        (IP["mx2"], 993): "open",
        (IP["mx1"], 110): "open",
        (IP["mx2"], 995): "open",
        (IP["ns1"], 53): "open",
        (IP["ns2"], 53): "open",
        (IP["ns1"], 80): "open",
        (IP["ns1"], 443): "open",
    }
    got = {target: probe(*target) for target in want}
    assert got == want
    # 465 (smtps) and ssh are let through though nothing listens in the lab: a RST, no drop
    for target in ((IP["mx1"], 465), (IP["salt"], 22)):
        assert probe(*target) in ("open", "refused"), target


def test_cluster_ports_closed_from_outside(cluster):
    targets = [
        (IP["ns1"], 3306),  # MariaDB listens on the node address
        (IP["ns2"], 3306),
        (IP["salt"], 4505),  # the master's publisher and request server
        (IP["salt"], 4506),
        (IP["salt"], 7798),  # the DRBD arbiter engine (for the storage nodes only)
        (IP["ns1"], 953),  # rndc (localhost only: without the firewall a RST)
        (IP["mx1"], 7789),  # DRBD, o2cb (shared_path in the lab: without the firewall a RST)
        (IP["mx1"], 7777),
        (IP["mx2-svc"], 7789),
        (IP["mx1"], 8081),  # mailgraph's CGI (for the web node only)
        (IP["mx1"], 3306),  # a port no role of mx1 serves
        (IP["ns1"], 8081),
    ]
    t0 = time.monotonic()
    got = {f"{h}:{p}": probe(h, p) for h, p in targets}
    assert got == {f"{h}:{p}": "filtered" for h, p in targets}
    assert time.monotonic() - t0 < len(targets) * (TIMEOUT + 0.5)


def test_heartbeat_port_for_the_pair_only(cluster):
    before = dropped(cluster, "mx1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(20):
            sock.sendto(b"not heartbeat", (IP["mx1"], 694))
    time.sleep(0.5)
    assert dropped(cluster, "mx1") - before >= 20
    # the peer's heartbeats get through (mx2 sends every 200 ms): both see each other
    before = dropped(cluster, "mx1")
    time.sleep(3)
    assert dropped(cluster, "mx1") - before < 5
    for node, peer in (("mx1", "mx2"), ("mx2", "mx1")):
        proc = cluster.run(node, "cl_status", "nodestatus", peer)
        assert proc.stdout.strip() == "active", (node, proc.stdout, proc.stderr)


def test_cluster_ports_open_between_nodes(cluster):
    got = probe_from(
        cluster,
        "mx1",
        [
            (IP["ns1"], 3306),
            (IP["ns2"], 3306),
            (IP["salt"], 4506),
            (IP["salt"], 7798),
            (IP["mx2"], 7789),
        ],
    )
    # MariaDB, the master and its DRBD arbiter answer; DRBD's port is let through to the peer
    # (a RST: no DRBD in the nspawn lab)
    assert got == {
        f"{IP['ns1']}:3306": "open",
        f"{IP['ns2']}:3306": "open",
        f"{IP['salt']}:4506": "open",
        f"{IP['salt']}:7798": "open",
        f"{IP['mx2']}:7789": "refused",
    }
    got = probe_from(cluster, "ns2", [(IP["ns1"], 953), (IP["ns1"], 3306)])
    assert got == {f"{IP['ns1']}:953": "refused", f"{IP['ns1']}:3306": "open"}
    got = probe_from(cluster, "ns1", [(IP["mx1"], 8081), (IP["mx2"], 8081)])
    assert set(got.values()) == {"open"}, got
    # but not for a node outside the port's roles: ns2 is no web node
    got = probe_from(cluster, "ns2", [(IP["mx1"], 8081), (IP["mx1"], 7789), (IP["salt"], 7798)])
    assert set(got.values()) == {"filtered"}, got


def test_zone_transfer_between_dns_nodes(cluster):
    proc = cluster.run("ns2", VENV_PY, "-c", AXFR, IP["ns1"], "example.test", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 3


def test_other_tables_survive_and_a_lost_table_comes_back(cluster):
    node = "ns2"
    assert cluster.run(node, "nft", "add", "table", "inet", "mctest").returncode == 0
    try:
        assert cluster.run(node, "systemctl", "reload", "nftables").returncode == 0
        tables = cluster.run(node, "nft", "list", "tables").stdout
        assert "table inet mctest" in tables and "table inet mailcluster" in tables
    finally:
        cluster.run(node, "nft", "delete", "table", "inet", "mctest")
    # someone flushed the whole ruleset: the next apply loads our table again
    assert cluster.run(node, "nft", "flush", "ruleset").returncode == 0
    ret = cluster.salt_json(node, "state.apply", "firewall", timeout=300)
    failed, changed = summarize(ret)
    assert not failed and changed == 1, ret
    (guard,) = [v for k, v in ret[node].items() if "firewall-service-table-cmd-run" in k]
    assert guard["changes"], guard
    assert cluster.run(node, "nft", "list", "table", "inet", "mailcluster").returncode == 0
