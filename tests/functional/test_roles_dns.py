"""DNS zones computed from the lab pillar, and the zone writer's serial handling.

The module is loaded through a masterless Caller for the records, and imported directly (with
its dunders filled in) for `dns_sync`, whose `rndc`/`named-checkzone` calls are replaced by a
stand-in that parses the zone with dnspython.
"""

import importlib.util
import pathlib

import dns.zone
from test_roles_support import REPO, run_node


def test_zone_records(tmp_path):
    (zones,) = run_node(tmp_path, "ns1", [["mailcluster.zones"]])
    assert sorted(zones) == ["cluster.test", "example.test", "sales.test"]
    recs = {(n, t, d) for n, _ttl, t, d in zones["example.test"]}
    assert ("@", "MX", "10 mx1.example.test.") in recs
    assert ("@", "MX", "10 mx2.example.test.") in recs
    assert {d for n, t, d in recs if n == "mail" and t == "A"} == {"10.88.0.111", "10.88.0.112"}
    assert ("mx1", "A", "10.88.0.111") in recs
    assert ("@", "TXT", '"v=spf1 mx ip4:10.88.0.111 ip4:10.88.0.112 -all"') in recs
    assert {d for n, t, d in recs if t == "NS"} == {"ns1.cluster.test.", "ns2.cluster.test."}


def _load_module(pillar, grains):
    spec = importlib.util.spec_from_file_location("mc_mod", REPO / "_modules" / "mailcluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
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

    mod.__pillar__ = pillar
    mod.__grains__ = grains
    mod.__salt__ = {"cmd.run_all": run_all}
    return mod, calls


def test_serial_moves_only_when_records_change(tmp_path, lab_pillar):
    pillar = lab_pillar  # this test changes it
    mod, calls = _load_module(pillar, {"id": "ns1"})
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
    # a new mailbox changes no record; a new domain adds one zone and leaves the others
    pillar["mailcluster"]["domains"]["new.test"] = {"mailboxes": []}
    out = mod.dns_sync(str(zdir))
    assert list(out["changed"]) == ["new.test"]
    # a record change bumps that zone's serial
    pillar["dns"] = {"rr_name": "webmail"}
    out = mod.dns_sync(str(zdir))
    assert out["changed"]["example.test"]["new"] > serial
    zone = dns.zone.from_file(str(path), origin="example.test", relativize=True)
    assert zone.get_rdataset("webmail", "A") is not None


def test_bad_zone_keeps_the_old_file(tmp_path, monkeypatch, lab_pillar):
    pillar = lab_pillar  # this test changes it
    mod, _ = _load_module(pillar, {"id": "ns1"})
    zdir = tmp_path / "zones"
    mod.dns_sync(str(zdir))
    before = (zdir / "db.example.test").read_text()
    pillar["dns"] = {"rr_name": "bad name"}  # renders an unparsable zone
    out = mod.dns_sync(str(zdir))
    assert "example.test" in out["errors"]
    assert (zdir / "db.example.test").read_text() == before
    assert not [p for p in pathlib.Path(zdir).iterdir() if p.name.startswith(".db.")]


def test_serial_floor_rewrites_only_zones_under_it(tmp_path, lab_pillar):
    mod, _ = _load_module(lab_pillar, {"id": "ns1"})
    mod.soa_serial = lambda zone, server="127.0.0.1", timeout=1.0: None  # no BIND here
    zdir = tmp_path / "zones"
    serial = mod.dns_sync(str(zdir))["changed"]["example.test"]["new"]
    # the serials a stand-in primary served: only the zone at or under its floor moves
    out = mod.dns_sync(str(zdir), serial_floor={"example.test": serial + 5, "sales.test": 1})
    assert out["changed"] == {"example.test": {"old": serial, "new": serial + 6}}
    assert mod.dns_sync(str(zdir), serial_floor={"example.test": serial + 5})["changed"] == {}
    zone = dns.zone.from_file(str(zdir / "db.example.test"), origin="example.test")
    assert zone.get_soa().serial == serial + 6


def test_new_zone_starts_above_the_served_serial(tmp_path, lab_pillar):
    """A secondary promoted to primary writes its zones above the copy its BIND serves."""
    mod, _ = _load_module(lab_pillar, {"id": "ns2"})
    served = {"example.test": 2099123199}
    mod.soa_serial = lambda zone, server="127.0.0.1", timeout=1.0: served.get(zone)
    out = mod.dns_sync(str(tmp_path / "zones"))
    assert out["changed"]["example.test"]["new"] == 2099123200
    assert out["changed"]["sales.test"]["new"] < 2099123200


def test_stale_journal_is_dropped_with_a_rewrite(tmp_path, lab_pillar):
    """A journal BIND cannot merge (the zone is not served as a primary here: a secondary
    being promoted again) belongs to an older file: BIND refused such a zone in the lab."""
    mod, _ = _load_module(lab_pillar, {"id": "ns2"})
    mod.soa_serial = lambda zone, server="127.0.0.1", timeout=1.0: None
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
            ["mailcluster.mapdata", "dns"],
            ["grains.setval", grain, "ns2"],
            ["mailcluster.mapdata", "dns"],
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
