"""The firewall role's ruleset per node, rendered through Salt's loader from the lab pillar.

- every node gets the role (through role common) and its ruleset opens exactly the ports of
  its pillar roles: world ports without a source match, cluster ports only from the sets;
- nft itself accepts every rendered file (`nft -c -f` in a network namespace of its own:
  parsed and tried against a kernel, nothing committed);
- pillar moves the ports and sources (admin_networks, extra_ports, another role's port, the
  storage peers' DRBD addresses); a bad port fails the render naming the key;
- `firewall:enabled: false` renders only the clean states;
- the table's defaults of other roles' ports are those roles' own defaults.
"""

import re
import shutil
import subprocess

import pytest
import yaml
from test_roles_support import NODES, REPO, pillar_copy, run_node

DROPIN = "/etc/nftables.d/mailcluster.nft"
CLUSTER = {"10.88.0.2", "10.88.0.11", "10.88.0.12", "10.88.0.21", "10.88.0.22"}
CLUSTER |= {"10.88.0.111", "10.88.0.112"}
PAIR = {"10.88.0.11", "10.88.0.12", "10.88.0.111", "10.88.0.112"}
DNS = {"10.88.0.21", "10.88.0.22"}
#: the lab's backup nodes (pillar/topology.sls: the target salt, the store nodes, the primary),
#: with their service IPs
BACKUP = {"10.88.0.2", "10.88.0.11", "10.88.0.12", "10.88.0.21", "10.88.0.111", "10.88.0.112"}
MAIL_WORLD = {25, 110, 143, 465, 587, 993, 995, 4190}

#: node -> {(proto, port): sources} (None: anywhere)
EXPECTED = {
    "salt": {
        ("tcp", 22): None,
        ("tcp", 4505): CLUSTER,
        ("tcp", 4506): CLUSTER,
        ("tcp", 873): BACKUP,
        # the DRBD pair's fence-peer handlers ask the master's arbiter (storage:drbd:arbiter)
        ("tcp", 7798): PAIR,
        # the lab's test ACME CA (pillar acme:pebble:enabled), for the mail and web nodes
        ("tcp", 14000): {"10.88.0.11", "10.88.0.12", "10.88.0.111", "10.88.0.112", "10.88.0.21"},
    },
    "mx1": {
        ("tcp", 22): None,
        **{("tcp", p): None for p in MAIL_WORLD},
        ("udp", 694): PAIR,
        ("tcp", 7789): PAIR,
        ("tcp", 7777): PAIR,
        ("tcp", 8081): {"10.88.0.21"},
        ("tcp", 873): BACKUP,
    },
    "ns1": {
        ("tcp", 22): None,
        ("tcp", 53): None,
        ("udp", 53): None,
        ("tcp", 80): None,
        ("tcp", 443): None,
        ("tcp", 3306): CLUSTER,
        ("tcp", 953): DNS,
        ("tcp", 873): BACKUP,
    },
    "ns2": {
        ("tcp", 22): None,
        ("tcp", 53): None,
        ("udp", 53): None,
        ("tcp", 3306): CLUSTER,
        ("tcp", 953): DNS,
    },
}
EXPECTED["mx2"] = EXPECTED["mx1"]

RULE = re.compile(
    r"^\s*(?:(?:ip6?) saddr @(?P<set>\w+) |meta nfproto \w+ )?"
    r"(?P<proto>tcp|udp) dport \{ (?P<ports>[0-9, ]+) \} accept comment \"(?P<src>\w+):"
)
#: the sources of this table's rows
SOURCES = {
    "world",
    "admin",
    "cluster",
    "ha",
    "storage",
    "web",
    "backup",
    "dns_primary_dns_secondary",
    "mail_web",
}
SET = re.compile(r"set (?P<name>\w+) \{[^}]*?elements = \{ (?P<elems>[^}]*) \}", re.S)


def parse(text):
    """``{(proto, port): sources}`` of the input chain's accept rules (sources None: any)."""
    sets = {m["name"]: set(m["elems"].replace(" ", "").split(",")) for m in SET.finditer(text)}
    out = {}
    for line in text.splitlines():
        m = RULE.match(line)
        if not m or m["src"] not in SOURCES:
            continue
        for port in m["ports"].split(","):
            key = (m["proto"], int(port))
            src = sets[m["set"]] if m["set"] else None
            if key in out:  # one rule per address family
                assert None not in (src, out[key]), f"{key} from anywhere and from a set:\n{text}"
                src = src | out[key]
            out[key] = src
    return out


def render(tmp_path, node, extra=None):
    """The firewall SLS of ``node`` and its templates, rendered with the contexts it passes
    (only this role: a highstate would also render the other roles)."""
    pillar = pillar_copy(tmp_path, extra) if extra is not None else None
    (high,) = run_node(tmp_path, node, [["state.show_sls", "firewall"]], pillar)
    calls, names = [], []
    for body in high.values() if isinstance(high, dict) else []:
        args = {
            k: v for item in body.get("file", []) if isinstance(item, dict) for k, v in item.items()
        }
        if args.get("template") == "jinja":
            src = REPO / "salt" / args["source"][len("salt://") :]
            names.append(args["name"])
            calls.append(
                [
                    "file.apply_template_on_contents",
                    [src.read_text()],
                    {
                        "template": "jinja",
                        "context": args["context"],
                        "defaults": None,
                        "saltenv": "base",
                    },
                ]
            )
    texts = run_node(tmp_path, node, calls, pillar) if calls else []
    return {n: {"text": t} for n, t in zip(names, texts, strict=True)}, high


def nft_check(text, tmp_path):
    """nft's own verdict on a ruleset, in a private network namespace."""
    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.fail("nft and unshare are needed (lab/host-setup installs them)")
    path = tmp_path / "check.nft"
    path.write_text(text)
    proc = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = {}
    for node in NODES:
        templates, high = render(tmp_path_factory.mktemp(node), node)
        out[node] = {"templates": templates, "high": high}
    return out


@pytest.mark.parametrize("node", NODES)
def test_ruleset_follows_roles(rendered, node, tmp_path):
    templates = rendered[node]["templates"]
    text = templates[DROPIN]["text"]
    assert parse(text) == EXPECTED[node], text
    # our table only, replaced in one transaction; the rest dropped and counted
    lines = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    assert lines[:3] == [
        "table inet mailcluster",
        "delete table inet mailcluster",
        "table inet mailcluster {",
    ]
    assert not [line for line in lines if "flush" in line]
    assert "policy drop;" in text and 'counter name "dropped" drop' in text
    for always in ('iif "lo" accept', "ct state established,related accept", "ipv6-icmp"):
        assert always in text
    conf = templates["/etc/nftables.conf"]["text"].splitlines()
    assert [line for line in conf if not line.startswith("#")] == [
        'include "/etc/nftables.d/*.nft"'
    ]
    nft_check(text, tmp_path)
    nft_check(templates["/etc/nftables.conf"]["text"].replace("include", "# include"), tmp_path)


@pytest.mark.parametrize("node", NODES)
def test_states_check_and_reload(rendered, node):
    high = rendered[node]["high"]
    assert isinstance(high, dict), high
    assert all(k.startswith("firewall-") for k in high)
    managed = high["firewall-config-ruleset-file-managed"]["file"]
    assert {"check_cmd": "nft -c -f"} in managed
    service = high["firewall-service-nftables-service-running"]["service"]
    assert {"reload": True} in service and {"enable": True} in service
    guard = high["firewall-service-table-cmd-run"]["cmd"]
    assert {"unless": "nft list table inet mailcluster"} in guard


SITE = """
firewall:
  admin_networks: [192.0.2.0/24, 192.0.2.7, 2001:db8::/32]
  extra_ports:
    world: [{port: 8443, service: alt-https}]
    cluster: [{port: 9100, proto: udp}]
ha:
  udpport: 695
graphs:
  port: 8090
storage:
  lookup:
    drbd:
      port: 7790
  nodes:
    mx1: {address: 10.99.0.11}
    mx2: {address: 10.99.0.12}
"""


def test_pillar_moves_ports_and_sources(tmp_path):
    templates, _ = render(tmp_path, "mx1", SITE)
    text = templates[DROPIN]["text"]
    got = parse(text)
    # 192.0.2.7 is inside 192.0.2.0/24: collapsed (nft refuses overlapping elements)
    assert got[("tcp", 22)] == {"192.0.2.0/24", "2001:db8::/32"}
    assert got[("tcp", 8443)] is None
    assert got[("udp", 9100)] == CLUSTER
    assert got[("udp", 695)] == PAIR and ("udp", 694) not in got
    assert got[("tcp", 8081 + 9)] == {"10.88.0.21"}
    assert got[("tcp", 7790)] == PAIR | {"10.99.0.11", "10.99.0.12"}
    assert ("tcp", 7789) not in got
    nft_check(text, tmp_path)


@pytest.mark.parametrize(
    "extra,message",
    [
        # the schemas (mailcluster.check) or the module: either names the key first
        ("ha:\n  udpport: 70000\n", "ha:udpport:"),
        ("firewall:\n  admin_networks: [10.0.0.300/8]\n", "firewall:admin_networks"),
    ],
    ids=["port-out-of-range", "bad-network"],
)
def test_bad_value_names_the_key(tmp_path, extra, message):
    _, high = render(tmp_path, "mx1", extra)
    assert isinstance(high, list), high
    assert message in "\n".join(high)


def test_disabled_renders_clean_only(tmp_path):
    _, high = render(tmp_path, "ns1", "firewall:\n  enabled: false\n")
    assert sorted(high) == ["firewall-clean-ruleset-file-absent", "firewall-clean-table-cmd-run"]
    cmd = high["firewall-clean-table-cmd-run"]["cmd"]
    assert {"name": "nft delete table inet mailcluster"} in cmd


def test_table_defaults_match_the_roles(tmp_path):
    """A port the table takes from another role defaults to that role's own default."""
    table = yaml.safe_load((REPO / "salt/firewall/parameters/defaults.yaml").read_text())["roles"]
    graphs_defaults = yaml.safe_load((REPO / "salt/graphs/parameters/defaults.yaml").read_text())
    (graphs_map,) = run_node(
        tmp_path, "mx1", [["mailcluster_map.mapdata", "graphs", graphs_defaults]]
    )
    seen = 0
    for entries in table.values():
        for entry in entries:
            key = entry.get("pillar_key")
            if not key:
                continue
            role, *path = key.split(":")
            if role == "graphs":
                default = graphs_map["cluster"][path[-1]]
            else:
                default = yaml.safe_load(
                    (REPO / "salt" / role / "parameters" / "defaults.yaml").read_text()
                )
                for part in path:
                    default = default[part]
            assert entry["port"] == default, key
            seen += 1
    # acme:pebble:port too (the lab's test CA, when enabled), storage:drbd:arbiter:port
    assert seen == 7


def test_table_roles_are_pillar_roles(tmp_path):
    """Every role of the table is one pillar knows (a typo would open nothing, silently)."""
    table = yaml.safe_load((REPO / "salt/firewall/parameters/defaults.yaml").read_text())["roles"]
    extra = yaml.safe_dump({"mailcluster": {"nodes": {"salt": {"roles": sorted(table)}}}})
    (errors,) = run_node(tmp_path, "salt", [["mailcluster.validate"]], pillar_copy(tmp_path, extra))
    assert errors, "the node's new roles should contradict the topology somewhere"
    assert not [e for e in errors if "unknown role" in e], errors
