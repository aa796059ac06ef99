"""The mailcluster modules share code through ``__salt__`` in Salt's real loader.

- a loader that holds only ``mailcluster`` and ``mailcluster_dns`` (no ``cmd``, no ``grains``
  module, no grains at all) computes the zones and asks for SOA serials: what the master's
  failover runner builds with its own pillar;
- ``minion_mods(opts, pillar=...)``, the other way to give a loader a pillar: the calls into
  ``mailcluster`` see that pillar too;
- ``withdrawn`` given replaces pillar ``dns:withdrawn`` and grain ``mailcluster_dns_withdrawn``;
- ``mailcluster_map.mapdata`` gets its zone names and its hash from the other modules;
- a module whose partners are missing does not load, and says which are missing.
"""

import copy
import shutil

import dns.exception
import dns.message
import dns.query
import dns.rrset
import pytest
import salt.loader
import salt.loader.lazy
from mc_fake_cmd import REPO

ZONES = ["cluster.test", "example.test", "sales.test"]
#: the roles' modules the failover runner loads on the master (_runners/mcheal_dns.py)
ROLES = ["mailcluster", "mailcluster_dns", "mailcluster_records"]


def _only(tmp_path, opts, names, pillar, grains):
    """A loader over copies of just ``_modules/<names>.py``: nothing else is in __salt__."""
    mod_dir = tmp_path / "only_modules"
    mod_dir.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(REPO / "_modules" / f"{name}.py", mod_dir / f"{name}.py")
    pack = {"__pillar__": pillar, "__grains__": grains, "__context__": {}}
    return salt.loader.lazy.LazyLoader(
        [str(mod_dir)], opts, tag="module", pack=pack, pack_self="__salt__"
    )


def _opts(minion_opts, **extra):
    opts = copy.deepcopy(minion_opts)
    opts.update(extra)
    return opts


def _a_records(zones, zone, name):
    return sorted(d for n, _ttl, t, d in zones[zone] if n == name and t == "A")


@pytest.fixture
def master_side(tmp_path, minion_opts, lab_pillar):
    """The runner's view: the lab pillar, no grains, only the roles' modules."""
    opts = _opts(minion_opts, id="salt", grains={}, pillar={})
    return _only(tmp_path, opts, ROLES, lab_pillar, {})


def test_zones_on_a_loader_with_only_the_roles_modules(master_side, minion_opts, lab_pillar):
    assert sorted(master_side) == [
        "mailcluster.check",
        "mailcluster.dns_primary",
        "mailcluster.near_first",
        "mailcluster.node_roles",
        "mailcluster.nodes_with",
        "mailcluster.top_sls",
        "mailcluster.validate",
        "mailcluster_dns.dns_plan",
        "mailcluster_dns.dns_sync",
        "mailcluster_dns.failover_names",
        "mailcluster_dns.soa_serial",
        "mailcluster_dns.zones",
        "mailcluster_records.client_sites",
        "mailcluster_records.legacy_hosts",
        "mailcluster_records.mail_names",
        "mailcluster_records.mx_hosts",
        "mailcluster_records.records",
        "mailcluster_records.settings",
        "mailcluster_records.sts_policy",
        "mailcluster_records.web_names",
    ]
    zones = master_side["mailcluster_dns.zones"]()
    assert sorted(zones) == ZONES
    # the same records as a minion's full loader computes
    minion = salt.loader.minion_mods(_opts(minion_opts, grains={"id": "ns1"}, pillar=lab_pillar))
    assert minion["mailcluster_dns.zones"]() == zones
    # layout cluster: the addresses live in the cluster zone, the domains alias them
    assert _a_records(zones, "cluster.test", "mail") == ["10.88.0.111", "10.88.0.112"]
    assert ["mail", 300, "CNAME", "mail.cluster.test."] in zones["example.test"]


def test_an_explicit_withdrawn_set_needs_no_grains(master_side):
    zones = master_side["mailcluster_dns.zones"](withdrawn=["mx1"])
    assert sorted(zones) == ZONES
    # mx1's host follows the survivor and leaves the round robin, in the cluster zone only
    assert _a_records(zones, "cluster.test", "mx1.mail") == ["10.88.0.112"]
    assert _a_records(zones, "cluster.test", "mail") == ["10.88.0.112"]
    spf = ["@", 300, "TXT", '"v=spf1 mx ip4:10.88.0.111 ip4:10.88.0.112 -all"']
    assert spf in zones["example.test"]
    assert zones["example.test"] == master_side["mailcluster_dns.zones"]()["example.test"]
    # both MX stay: the records are never emptied
    mx = [d for _n, _ttl, t, d in zones["example.test"] if t == "MX"]
    assert mx == ["10 mx1.mail.cluster.test.", "10 mx2.mail.cluster.test."]
    # the node records of the cluster domain do not move
    assert _a_records(zones, "cluster.test", "mx1-svc") == ["10.88.0.111"]
    # what a failover reads and changes: the one cluster zone
    assert sorted(master_side["mailcluster_dns.zones"](["mx1"], failover_only=True)) == [
        "cluster.test"
    ]
    assert (
        master_side["mailcluster_dns.zones"](withdrawn=[]) == master_side["mailcluster_dns.zones"]()
    )


def test_withdrawn_replaces_the_pillar_list_and_the_grain(tmp_path, minion_opts, lab_pillar):
    pillar = lab_pillar  # this test changes it
    pillar["dns"] = {"withdrawn": ["mx1"]}
    opts = _opts(minion_opts, id="ns1", grains={}, pillar={})
    by_pillar = _only(tmp_path, opts, ROLES, pillar, {"id": "ns1"})
    assert _a_records(by_pillar["mailcluster_dns.zones"](), "cluster.test", "mail") == [
        "10.88.0.112"
    ]
    explicit = by_pillar["mailcluster_dns.zones"](withdrawn=[])
    assert _a_records(explicit, "cluster.test", "mail") == ["10.88.0.111", "10.88.0.112"]
    # the grain the failover sets on the DNS primary, and an explicit set instead of it
    del pillar["dns"]
    grains = {"id": "ns1", "mailcluster_dns_withdrawn": ["mx2"]}
    by_grain = _only(tmp_path, opts, ROLES, pillar, grains)
    assert _a_records(by_grain["mailcluster_dns.zones"](), "cluster.test", "mail") == [
        "10.88.0.111"
    ]
    explicit = by_grain["mailcluster_dns.zones"](withdrawn=["mx1"])
    assert _a_records(explicit, "cluster.test", "mail") == ["10.88.0.112"]
    # from the command line: withdrawn=mx1
    assert by_grain["mailcluster_dns.zones"](withdrawn="mx1") == explicit


def test_minion_mods_with_a_pillar_argument(minion_opts, lab_pillar):
    """minion_mods(pillar=) reaches the loader's own modules only, not the one behind
    __salt__ (Salt 3008): the calls into mailcluster carry the pillar along."""
    loader = salt.loader.minion_mods(_opts(minion_opts, id="salt", grains={}), pillar=lab_pillar)
    zones = loader["mailcluster_dns.zones"](withdrawn=["mx2"])
    assert sorted(zones) == ZONES
    assert _a_records(zones, "cluster.test", "mx2.mail") == ["10.88.0.111"]
    assert [d for _n, _ttl, t, d in zones["sales.test"] if t == "NS"] == [
        "ns1.cluster.test.",
        "ns2.cluster.test.",
    ]


def test_soa_serial_on_the_same_loader(master_side, monkeypatch):
    asked = []

    def udp(query, server, timeout=None, **_kwargs):
        asked.append((query.question[0].name.to_text(), server, timeout))
        if server != "10.88.0.22":
            raise dns.exception.Timeout(timeout=timeout)
        resp = dns.message.make_response(query)
        soa = "ns1.cluster.test. hostmaster.example.test. 2026010203 300 60 1209600 300"
        resp.answer.append(dns.rrset.from_text("example.test.", 300, "IN", "SOA", soa))
        return resp

    monkeypatch.setattr(dns.query, "udp", udp)
    soa_serial = master_side["mailcluster_dns.soa_serial"]
    assert soa_serial("example.test", server="10.88.0.22", timeout=0.5) == 2026010203
    assert soa_serial("example.test", server="10.88.0.21") is None
    assert asked == [("example.test.", "10.88.0.22", 0.5), ("example.test.", "10.88.0.21", 1.0)]


def test_mapdata_gets_zones_and_hash_from_the_other_modules(minion_opts, lab_pillar):
    loader = salt.loader.minion_mods(_opts(minion_opts, grains={"id": "ns1"}, pillar=lab_pillar))
    dns_map = loader["mailcluster_map.mapdata"]("dns", {"ttl": 1})
    assert dns_map["cluster"]["zones"] == sorted(loader["mailcluster_dns.zones"]()) == ZONES
    web = loader["mailcluster_map.mapdata"]("web")["cluster"]
    setup = lab_pillar["mailcluster"]["secrets"]["postfixadmin"]["setup_password"]
    assert web["setup_password_hash"] == loader["mailcluster_db.stable_hash"](setup)
    # invalid pillar: the message of mailcluster.check, naming the key (another job, another
    # loader: the per-job memo, _modules/mailcluster_memo.py, holds the last job's check)
    lab_pillar["mailcluster"]["nodes"]["ns2"]["roles"].append("webmail")
    loader = salt.loader.minion_mods(_opts(minion_opts, grains={"id": "ns1"}, pillar=lab_pillar))
    with pytest.raises(Exception, match="mailcluster:nodes:ns2:roles: unknown role 'webmail'"):
        loader["mailcluster_map.mapdata"]("dns")


@pytest.mark.parametrize(
    ("names", "refused", "reason"),
    [
        (["mailcluster_dns"], "mailcluster_dns.zones", "mailcluster execution module"),
        (
            ["mailcluster", "mailcluster_db", "mailcluster_map"],
            "mailcluster_map.mapdata",
            "needs mailcluster_dns.zones",
        ),
        (
            [*ROLES, "mailcluster_map"],
            "mailcluster_map.mapdata",
            "needs mailcluster_db.stable_hash",
        ),
    ],
)
def test_a_module_without_its_partners_does_not_load(
    tmp_path, minion_opts, lab_pillar, names, refused, reason
):
    loader = _only(tmp_path, _opts(minion_opts), names, lab_pillar, {"id": "ns1"})
    assert refused not in loader
    assert reason in loader.missing_fun_string(refused)
