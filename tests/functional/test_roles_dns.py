"""DNS zones computed from the lab pillar, and the zone writer's serial handling.

`mailcluster_dns` runs through Salt's loader: a masterless Caller for the records, and a
loader built on the functional tests' options (the fake `cmd` of fake_tree) with the lab
pillar for `dns_sync`. Its `rndc`/`named-checkzone` calls land in a stand-in that parses the
zone with dnspython, and its SOA queries (`mailcluster_dns.soa_serial`) in a stand-in for
`dns.query.udp` that answers the serials a test gives (none: no BIND here).
"""

import copy
import pathlib

import dns.exception
import dns.message
import dns.query
import dns.rrset
import dns.zone
import pytest
import salt.loader
from test_roles_support import pillar_copy, run_node


def _recs(zones, zone):
    return {(n, t, d) for n, _ttl, t, d in zones[zone]}


def test_zone_records(tmp_path):
    """Layout cluster (the default): the addresses in the cluster zone, each domain's MX
    names those hosts (never a CNAME, RFC 2181 10.3), its mail names alias them."""
    (zones, moving) = run_node(
        tmp_path, "ns1", [["mailcluster_dns.zones"], ["mailcluster_dns.failover_names"]]
    )
    assert sorted(zones) == ["cluster.test", "example.test", "sales.test"]
    cluster = _recs(zones, "cluster.test")
    assert {d for n, t, d in cluster if n == "mail" and t == "A"} == {"10.88.0.111", "10.88.0.112"}
    assert ("mx1.mail", "A", "10.88.0.111") in cluster
    assert ("mx2.mail", "A", "10.88.0.112") in cluster
    assert moving == {"cluster.test": ["mail", "mx1.mail", "mx2.mail"]}
    recs = _recs(zones, "example.test")
    assert ("@", "MX", "10 mx1.mail.cluster.test.") in recs
    assert ("@", "MX", "10 mx2.mail.cluster.test.") in recs
    cnames = {n: d for n, t, d in recs if t == "CNAME"}
    assert cnames == {
        "mail": "mail.cluster.test.",
        "mx1": "mx1.mail.cluster.test.",
        "mx2": "mx2.mail.cluster.test.",
    }
    assert not {d for _n, t, d in recs if t == "MX"} & {f"{c}.example.test." for c in cnames}
    assert not [n for n, t, _d in recs if t == "A" and n in cnames]  # a CNAME stands alone
    assert ("_imaps._tcp", "SRV", "0 1 993 mail.cluster.test.") in recs  # no alias target
    assert ("@", "TXT", '"v=spf1 mx ip4:10.88.0.111 ip4:10.88.0.112 -all"') in recs
    assert {d for n, t, d in recs if t == "NS"} == {"ns1.cluster.test.", "ns2.cluster.test."}


def test_zone_records_per_domain(tmp_path):
    """Layout per_domain (before issue 14): A records of the mail hosts in every domain."""
    root = pillar_copy(tmp_path, "dns:\n  layout: per_domain\n")
    (zones, moving) = run_node(
        tmp_path,
        "ns1",
        [["mailcluster_dns.zones"], ["mailcluster_dns.failover_names"]],
        pillar_root=root,
    )
    recs = _recs(zones, "example.test")
    assert ("@", "MX", "10 mx1.example.test.") in recs
    assert ("@", "MX", "10 mx2.example.test.") in recs
    assert {d for n, t, d in recs if n == "mail" and t == "A"} == {"10.88.0.111", "10.88.0.112"}
    assert ("mx1", "A", "10.88.0.111") in recs
    assert not [r for r in recs if r[1] == "CNAME"]
    assert not [r for r in _recs(zones, "cluster.test") if r[0] == "mail"]
    assert moving == {d: ["mail", "mx1", "mx2"] for d in ("example.test", "sales.test")}


def test_cluster_zone_of_its_own(tmp_path):
    """dns:cluster_zone under the cluster domain: a zone of its own, delegated."""
    root = pillar_copy(tmp_path, "dns:\n  cluster_zone: mx.cluster.test\n")
    (zones, failover) = run_node(
        tmp_path,
        "ns1",
        [["mailcluster_dns.zones"], ["mailcluster_dns.zones", [["mx1"]], {"failover_only": True}]],
        pillar_root=root,
    )
    assert sorted(zones) == ["cluster.test", "example.test", "mx.cluster.test", "sales.test"]
    assert ("mx", "NS", "ns1.cluster.test.") in _recs(zones, "cluster.test")
    assert ("mx1.mail", "A", "10.88.0.111") in _recs(zones, "mx.cluster.test")
    assert ("@", "MX", "10 mx1.mail.mx.cluster.test.") in _recs(zones, "example.test")
    assert list(failover) == ["mx.cluster.test"]
    assert {d for n, t, d in _recs(failover, "mx.cluster.test") if n == "mx1.mail"} == {
        "10.88.0.112"
    }


class _Served:
    """What "BIND on this node" serves: ``{zone: serial}`` (empty: nothing answers)."""

    def __init__(self):
        self.serials = {}

    def udp(self, query, _server, timeout=None, **_kwargs):
        zone = query.question[0].name.to_text().rstrip(".")
        if zone not in self.serials:
            raise dns.exception.Timeout(timeout=timeout)
        resp = dns.message.make_response(query)
        soa = f"ns1.cluster.test. hostmaster.{zone}. {self.serials[zone]} 300 60 1209600 300"
        resp.answer.append(dns.rrset.from_text(f"{zone}.", 300, "IN", "SOA", soa))
        return resp


@pytest.fixture
def served(monkeypatch):
    bind = _Served()
    monkeypatch.setattr(dns.query, "udp", bind.udp)
    return bind.serials


@pytest.fixture
def dns_mod(minion_opts, fake_cmd, monkeypatch, served):
    """``make(pillar, node)``: the ``mailcluster_dns`` functions of a loader with that pillar
    (kept by reference: a test's later pillar edits are seen) and the command lines run."""
    calls = []

    def run_all(cmd, **_kwargs):
        calls.append(cmd)
        if cmd[0] == "named-checkzone":
            try:
                dns.zone.from_file(cmd[-1], origin=cmd[-2], relativize=True)
            except Exception as exc:
                return {"retcode": 1, "stdout": "", "stderr": str(exc)}
            return {"retcode": 0, "stdout": "", "stderr": ""}
        return {"retcode": 1, "stdout": "", "stderr": "zone not loaded"}  # rndc

    monkeypatch.setattr(fake_cmd, "run", run_all)

    def make(pillar, node):
        opts = copy.deepcopy(minion_opts)
        opts.update(id=node, grains={"id": node}, pillar=pillar)
        return salt.loader.minion_mods(opts).mailcluster_dns, calls

    return make


def test_serial_moves_only_when_records_change(tmp_path, lab_pillar, dns_mod):
    pillar = lab_pillar  # this test changes it
    mod, calls = dns_mod(pillar, "ns1")
    zdir = tmp_path / "zones"
    first = mod.dns_sync(str(zdir))
    assert sorted(first["changed"]) == ["cluster.test", "example.test", "sales.test"]
    assert not first["errors"]
    serial = first["changed"]["example.test"]["new"]
    # nothing changed: no write, not even a check
    calls.clear()
    assert mod.dns_sync(str(zdir), test=True)["changed"] == {}
    assert mod.dns_sync(str(zdir))["changed"] == {}
    assert not [c for c in calls if c[0] == "named-checkzone"]
    # reformatting the file (as BIND does when it dumps a zone) is no change either
    path = zdir / "db.example.test"
    text = path.read_text().replace(" IN ", "\tIN\t")
    path.write_text(text)
    assert mod.dns_sync(str(zdir))["changed"] == {}
    # a new mailbox changes no record; a new domain adds one zone and leaves the others (a
    # new run's pillar is a new compile: new objects, which the per-job memo of the zones,
    # _modules/mailcluster_memo.py, knows apart from the last run's)
    pillar["mailcluster"] = copy.deepcopy(pillar["mailcluster"])
    pillar["mailcluster"]["domains"]["new.test"] = {"mailboxes": []}
    out = mod.dns_sync(str(zdir))
    assert list(out["changed"]) == ["new.test"]
    # a record change bumps that zone's serial
    pillar["dns"] = {"rr_name": "webmail"}
    out = mod.dns_sync(str(zdir))
    assert out["changed"]["example.test"]["new"] > serial
    zone = dns.zone.from_file(str(path), origin="example.test", relativize=True)
    assert zone.get_rdataset("webmail", "CNAME") is not None  # layout cluster: an alias


def test_bad_zone_keeps_the_old_file(tmp_path, lab_pillar, dns_mod):
    pillar = lab_pillar  # this test changes it
    mod, _ = dns_mod(pillar, "ns1")
    zdir = tmp_path / "zones"
    mod.dns_sync(str(zdir))
    before = (zdir / "db.example.test").read_text()
    pillar["dns"] = {"rr_name": "bad name"}  # renders an unparsable zone
    out = mod.dns_sync(str(zdir))
    assert "example.test" in out["errors"]
    assert (zdir / "db.example.test").read_text() == before
    assert not [p for p in pathlib.Path(zdir).iterdir() if p.name.startswith(".db.")]


def test_serial_floor_rewrites_only_zones_under_it(tmp_path, lab_pillar, dns_mod):
    mod, _ = dns_mod(lab_pillar, "ns1")  # no BIND answers here
    zdir = tmp_path / "zones"
    serial = mod.dns_sync(str(zdir))["changed"]["example.test"]["new"]
    # the serials a stand-in primary served: only the zone at or under its floor moves
    out = mod.dns_sync(str(zdir), serial_floor={"example.test": serial + 5, "sales.test": 1})
    assert out["changed"] == {"example.test": {"old": serial, "new": serial + 6}}
    assert mod.dns_sync(str(zdir), serial_floor={"example.test": serial + 5})["changed"] == {}
    zone = dns.zone.from_file(str(zdir / "db.example.test"), origin="example.test")
    assert zone.get_soa().serial == serial + 6


def test_new_zone_starts_above_the_served_serial(tmp_path, lab_pillar, dns_mod, served):
    """A secondary promoted to primary writes its zones above the copy its BIND serves."""
    mod, _ = dns_mod(lab_pillar, "ns2")
    served["example.test"] = 2099123199
    out = mod.dns_sync(str(tmp_path / "zones"))
    assert out["changed"]["example.test"]["new"] == 2099123200
    assert out["changed"]["sales.test"]["new"] < 2099123200


def test_stale_journal_is_dropped_with_a_rewrite(tmp_path, lab_pillar, dns_mod):
    """A journal BIND cannot merge (the zone is not served as a primary here: a secondary
    being promoted again) belongs to an older file: BIND refused such a zone in the lab."""
    mod, _ = dns_mod(lab_pillar, "ns2")  # no BIND answers here
    zdir = tmp_path / "zones"
    serial = mod.dns_sync(str(zdir))["changed"]["example.test"]["new"]
    jnl = zdir / "db.example.test.jnl"
    jnl.write_bytes(b";BIND LOG V9\n")
    out = mod.dns_sync(str(zdir))
    assert out["changed"] == {"example.test": {"old": serial, "new": serial + 1}}
    assert not jnl.exists()
    assert mod.dns_sync(str(zdir))["changed"] == {}


def test_acting_primary_grain_turns_a_secondary_into_the_primary(tmp_path):
    """The failover runner's grain makes ns2 the primary of the dns role (its highstate keeps
    it one); a grain naming a node without a DNS role is ignored."""
    grain = "mailcluster_dns_acting_primary"
    plain, _, acting = run_node(
        tmp_path,
        "ns2",
        [
            ["mailcluster_map.mapdata", "dns"],
            ["grains.setval", grain, "ns2"],
            ["mailcluster_map.mapdata", "dns"],
        ],
    )
    # a new process, as a minion job is: the states render with the grain from the start
    (sls,) = run_node(tmp_path, "ns2", [["state.show_sls", "dns.secondary"]])
    _, stray = run_node(
        tmp_path, "ns2", [["grains.setval", grain, "mx1"], ["mailcluster.dns_primary"]]
    )
    assert (plain["cluster"]["role"], plain["cluster"]["acting"]) == ("secondary", False)
    assert plain["cluster"]["primary_ip"] == "10.88.0.21"
    facts = acting["cluster"]
    assert (facts["role"], facts["acting"], facts["primary_ip"]) == ("primary", True, "10.88.0.22")
    assert facts["secondary_ips"] == ["10.88.0.21"]
    assert "dns-primary-zones-mailcluster-zones-synced" in sls
    assert "dns-secondary-local-file-managed" not in sls
    assert stray == "ns1"
