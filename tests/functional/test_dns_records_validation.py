"""DMARC, DKIM, MTA-STS, TLS-RPT and client set-up records (issue 13.2/13.7) from pillar.

- bad values of the new keys (cluster defaults under ``dns:``, per domain under
  ``mailcluster:domains:<d>:``) are refused naming the key, and a highstate stops on one;
- the records ``mailcluster_dns.zones`` computes from the lab pillar, a cluster default under
  per-domain overrides, DKIM TXT data split into strings of at most 255 octets, the
  ``_mta-sts`` id following the policy (not a failover), and a domain added to pillar getting
  every record and web site in the same call.
"""

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
import yaml
from test_roles_support import pillar_copy, run_node

# (pillar merged into the lab pillar (YAML), text the error must contain)
BAD = {
    "layout": ("dns: {layout: flat}", "dns:layout: must be one of"),
    "cluster-zone-name": ("dns: {cluster_zone: Mail_Hosts}", "dns:cluster_zone: "),
    "cluster-zone-is-a-domain": (
        "dns: {cluster_zone: sales.test}",
        "dns:cluster_zone: 'sales.test' is a mail domain (mailcluster:domains)",
    ),
    "rr-name-is-a-node": ("dns: {rr_name: ns2}", "dns:rr_name: 'ns2' is a node's name"),
    "dmarc-policy": (
        "mailcluster: {domains: {example.test: {dmarc: {policy: block}}}}",
        'mailcluster:domains:example.test:dmarc:policy: must be one of "none", "quarantine", '
        '"reject" (got "block")',
    ),
    "dmarc-policy-cluster": (
        "dns: {dmarc: {policy: monitor}}",
        'dns:dmarc:policy: must be one of "none", "quarantine", "reject" (got "monitor")',
    ),
    "dmarc-sp": (
        "mailcluster: {domains: {sales.test: {dmarc: {sp: strict}}}}",
        "mailcluster:domains:sales.test:dmarc:sp: must be one of",
    ),
    "dmarc-pct": (
        "mailcluster: {domains: {sales.test: {dmarc: {pct: 150}}}}",
        "mailcluster:domains:sales.test:dmarc:pct: must be <= 100 (got 150)",
    ),
    "dmarc-rua-not-address": (
        "mailcluster: {domains: {example.test: {dmarc: {rua: postmaster}}}}",
        "mailcluster:domains:example.test:dmarc:rua: must be an address local@domain, a list",
    ),
    "dmarc-rua-list-item": (
        "mailcluster: {domains: {example.test: {dmarc: {rua: [a@example.test, 'b,c@x.test']}}}}",
        "mailcluster:domains:example.test:dmarc:rua: must be an address local@domain, a list",
    ),
    "dmarc-rua-mailto": (
        "dns: {dmarc: {rua: 'mailto:reports@example.test'}}",
        "dns:dmarc:rua: must be an address local@domain, a list",
    ),
    "dmarc-typo": (
        "mailcluster: {domains: {example.test: {dmarc: {polcy: reject}}}}",
        "mailcluster:domains:example.test:dmarc:polcy: unknown key (allowed: policy, sp, pct, rua)",
    ),
    "mta-sts-mode": (
        "mailcluster: {domains: {example.test: {mta_sts: {mode: strict}}}}",
        'mailcluster:domains:example.test:mta_sts:mode: must be one of "enforce", "testing"',
    ),
    "mta-sts-max-age": (
        "dns: {mta_sts: {max_age: 31557601}}",
        "dns:mta_sts:max_age: must be <= 31557600",
    ),
    "tls-rpt-rua": (
        "mailcluster: {domains: {sales.test: {tls_rpt: {rua: 'https://x.test/'}}}}",
        "mailcluster:domains:sales.test:tls_rpt:rua: must be an address local@domain, a list",
    ),
    "web-clients-root": (
        "web: {clients: {root: relative/dir}}",
        "web:clients:root: must be an absolute path",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors


def test_a_bad_dmarc_policy_stops_the_highstate(tmp_path):
    extra = yaml.safe_load(BAD["dmarc-policy"][0])
    result, single = run_node(
        tmp_path,
        "ns1",
        [["state.apply", [], {"test": True}], ["state.show_sls", "dns.primary"]],
        pillar_copy(tmp_path, yaml.dump(extra)),
    )
    message = BAD["dmarc-policy"][1]
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        text = "\n".join(v["comment"] for v in result.values())
    else:
        text = "\n".join(result)
    assert message in text, text
    assert isinstance(single, list) and message in "\n".join(single), single


# ------------------------------------------------------------------ the records
#: a 2048-bit key's TXT: longer than one TXT string (255 octets)
DKIM_TXT = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 9 + "IDAQAB"

EXTRA = f"""
dns:
  dmarc: {{policy: reject, rua: dmarc@example.test}}
  mta_sts: {{max_age: 3600}}
mailcluster:
  domains:
    added.test:
      mailboxes: []
      tls_rpt: {{rua: []}}
mailcluster_dkim:
  example.test: {{selector: s2026, txt: "{DKIM_TXT}"}}
  sales.test: {{selector: "bad selector", txt: "v=DKIM1; p=AAAA"}}
"""


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("records")
    lab = run_node(tmp / "lab", "ns1", [["mailcluster_dns.zones"]])[0]
    more = run_node(
        tmp / "more",
        "ns1",
        [
            ["mailcluster.validate"],
            ["mailcluster_dns.zones"],
            ["mailcluster_dns.zones", [], {"withdrawn": ["mx1"]}],
            ["mailcluster_records.client_sites"],
            ["mailcluster_records.web_names", "added.test"],
            ["state.show_sls", "web.clients"],
            ["mailcluster_clients.files"],
        ],
        pillar_copy(tmp / "more", EXTRA),
    )
    return lab, *more


def _txt(zones, zone, name):
    """The TXT strings of ``name`` joined, per record (as a resolver reassembles them)."""
    out = []
    for n, _ttl, t, d in zones[zone]:
        if n == name and t == "TXT":
            rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, d)
            assert all(len(s) <= 255 for s in rd.strings)
            out.append(b"".join(rd.strings).decode())
    return out


def _rdata(zones, zone, name, rtype):
    return sorted(d for n, _ttl, t, d in zones[zone] if n == name and t == rtype)


def test_lab_records(computed):
    lab = computed[0]
    assert _txt(lab, "example.test", "_dmarc") == [
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"
    ]
    assert _txt(lab, "sales.test", "_dmarc") == [
        "v=DMARC1; p=reject; sp=quarantine; "
        "rua=mailto:postmaster@example.test,mailto:postmaster@sales.test"
    ]
    # reports of sales.test go to example.test, whose zone authorizes them (RFC 7489 7.1)
    assert _txt(lab, "example.test", "sales.test._report._dmarc") == ["v=DMARC1"]
    assert _txt(lab, "sales.test", "_smtp._tls") == [
        "v=TLSRPTv1; rua=mailto:postmaster@example.test"
    ]
    for zone in ("example.test", "sales.test"):
        (sts,) = _txt(lab, zone, "_mta-sts")
        assert sts.startswith("v=STSv1; id=") and sts[12:].isalnum()
        for label in ("mta-sts", "autoconfig", "autodiscover"):
            assert _rdata(lab, zone, label, "A") == ["10.88.0.21"]  # the web node, ns1
        assert _rdata(lab, zone, "_autodiscover._tcp", "SRV") == [f"0 0 443 autodiscover.{zone}."]
        # an SRV target must not be an alias (RFC 2782): the cluster zone's round robin
        assert _rdata(lab, zone, "_submission._tcp", "SRV") == ["0 1 587 mail.cluster.test."]
        # no DKIM pillar here (the master's ext_pillar makes it): no DKIM record
        assert not [n for n, _t, _y, _d in lab[zone] if n.endswith("._domainkey")]


def test_defaults_overrides_and_dkim(computed):
    _lab, errors, zones, _withdrawn, sites, names, _web, _files = computed
    assert errors == []
    # the cluster default (dns:dmarc) under the domain's own policy; rua from the default
    assert _txt(zones, "example.test", "_dmarc") == [
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.test"
    ]
    # a new domain: the cluster defaults, reports to the default address, no TLS-RPT ([])
    assert _txt(zones, "added.test", "_dmarc") == [
        "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
    ]
    assert _txt(zones, "added.test", "_smtp._tls") == []
    assert _txt(zones, "example.test", "added.test._report._dmarc") == ["v=DMARC1"]
    # DKIM: split into strings of at most 255 octets that join to the pillar's text
    assert _txt(zones, "example.test", "s2026._domainkey") == [DKIM_TXT]
    (data,) = _rdata(zones, "example.test", "s2026._domainkey", "TXT")
    assert data.count('" "') == len(DKIM_TXT) // 255
    # a selector that is no DNS label gives no record (the zone stays loadable)
    assert not [n for n, _t, _y, _d in zones["sales.test"] if n.endswith("._domainkey")]
    # the added domain has every record and web site at once
    assert len(_txt(zones, "added.test", "_mta-sts")) == 1
    assert _rdata(zones, "added.test", "mta-sts", "A") == ["10.88.0.21"]
    assert names == ["mta-sts.added.test", "autoconfig.added.test", "autodiscover.added.test"]
    site = {s["domain"]: s for s in sites}["added.test"]
    assert site["names"] == names
    assert site["mail_host"] == "mail.added.test"
    assert site["mta_sts"]["text"] == (
        "version: STSv1\nmode: testing\nmx: mx1.mail.cluster.test\nmx: mx2.mail.cluster.test\n"
        "mx: mx1.added.test\nmx: mx2.added.test\nmax_age: 3600\n"
    )


def test_the_sts_id_follows_the_policy_not_a_failover(computed):
    lab, _errors, zones, withdrawn, sites, _names, _web, _files = computed
    by_domain = {s["domain"]: s for s in sites}
    for zone in ("example.test", "sales.test", "added.test"):
        (sts,) = _txt(zones, zone, "_mta-sts")
        assert sts == f"v=STSv1; id={by_domain[zone]['mta_sts']['id']}"
        # a failover re-points A records only: every record of this part stays as it is
        assert _txt(withdrawn, zone, "_mta-sts") == [sts]
        assert _txt(withdrawn, zone, "_dmarc") == _txt(zones, zone, "_dmarc")
    # max_age changed (dns:mta_sts) on sales.test: a new id; example.test's own max_age: same
    assert _txt(lab, "sales.test", "_mta-sts") != _txt(zones, "sales.test", "_mta-sts")
    assert _txt(lab, "example.test", "_mta-sts") == _txt(zones, "example.test", "_mta-sts")


def test_the_web_role_serves_an_added_domain_in_the_same_apply(computed):
    web, files = computed[-2:]
    assert isinstance(web, dict), web
    # one state for every domain's files (issue 14.2), which removes what it does not list
    # (tests/functional/test_bulk_files_states.py runs it)
    state = web["web-clients-sites-mailcluster-files-client-sites"]["mailcluster_files"]
    assert {"name": "/var/www/mailcluster-clients"} in state
    assert files["added.test/.well-known/mta-sts.txt"].endswith("max_age: 3600\n")
    for path in ("mail/config-v1.1.xml", "autodiscover/autodiscover.xml"):
        assert "added.test" in files[f"added.test/{path}"]
