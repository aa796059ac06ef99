"""DNS records, MTA-STS and client set-up of every mail domain (issue 13.2 and 13.7), in the lab.

- checkdmarc (a client nobody here wrote) queries and parses each domain's SPF, DMARC,
  MTA-STS and TLS-RPT records on both DNS servers: ns1 (the primary) and ns2, which got them
  by zone transfer;
- the MTA-STS policy is fetched over HTTPS by name (SNI and Host ``mta-sts.<domain>``, the
  address from the domain's own A record) from the web node and parsed by checkdmarc: its mx
  lines are the MX records, its mode the pillar's, and its digest the ``_mta-sts`` record's id;
- Thunderbird's autoconfig XML (plain HTTP and HTTPS, by name) and Outlook's autodiscover
  (POST over HTTPS) are parsed, and the IMAP and submission servers they name answer a login
  of a real mailbox there;
- a second highstate of the DNS/web nodes changes nothing.

Certificates: this part does not decide which names a certificate carries (the ACME part
does); the HTTPS fetches here verify no certificate (CERT_NONE) and check the content only.
"""

from __future__ import annotations

import hashlib
import http.client
import imaplib
import smtplib
import socket
import ssl
import xml.etree.ElementTree as ET

import checkdmarc.dmarc
import checkdmarc.mta_sts
import checkdmarc.smtp_tls_reporting
import checkdmarc.spf
import dns.message
import dns.query
import dns.rdatatype
import pytest
from _roles_helpers import PASSWORDS, apply_all, salt_call_json, state_results, wait_for

pytestmark = pytest.mark.lab

DNS_NODES = ("ns1", "ns2")
#: the lab's per-domain settings (pillar/domains.sls) and a user of each domain
DOMAINS = {
    "example.test": {"dmarc": "quarantine", "sts_mode": "enforce", "user": "alice@example.test"},
    "sales.test": {"dmarc": "reject", "sts_mode": "testing", "user": "dave@sales.test"},
}
AUTODISCOVER_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""
OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def query(server: str, name: str, rtype: str) -> list[str]:
    q = dns.message.make_query(name, rtype)
    resp = dns.query.udp(q, server, timeout=2)
    return sorted(
        rd.to_text()
        for rrset in resp.answer
        for rd in rrset
        if rrset.rdtype == dns.rdatatype.from_text(rtype)
    )


def query_txt(server: str, name: str) -> list[str]:
    """Each TXT record of ``name``, its strings joined (as a verifier reads it)."""
    resp = dns.query.udp(dns.message.make_query(name, "TXT"), server, timeout=2)
    return [b"".join(rd.strings).decode() for rrset in resp.answer for rd in rrset]


def soa_serial(server: str, zone: str) -> int | None:
    got = query(server, zone, "SOA")
    return int(got[0].split()[2]) if got else None


def fetch(ip: str, name: str, path: str, *, tls=True, method="GET", body=None):
    """``(status, content type, body)`` of ``path`` asked of ``ip`` by name (SNI + Host)."""
    sock = socket.create_connection((ip, 443 if tls else 80), timeout=10)
    if tls:
        conn = http.client.HTTPSConnection(name, 443, context=_unverified(), timeout=10)
        sock = _unverified().wrap_socket(sock, server_hostname=name)
    else:
        conn = http.client.HTTPConnection(name, 80, timeout=10)
    conn.sock = sock
    headers = {"Content-Type": "text/xml"} if body else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    out = resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    conn.close()
    return out


@pytest.fixture(scope="module")
def converged(lab):
    """The DNS and web nodes applied (a converged lab: nothing to do), and ns2 serving the
    primary's serials."""
    ret, seconds = apply_all(lab, target="ns*", expect=DNS_NODES, timeout=600)
    failed, _changed = state_results(ret)
    assert not failed, "\n".join(failed)
    primary, secondary = lab.ip("ns1"), lab.ip("ns2")
    for zone in DOMAINS:
        want = soa_serial(primary, zone)
        wait_for(lambda z=zone, w=want: (soa_serial(secondary, z) or 0) >= w, timeout=30)
    print(f"first apply of ns1, ns2: {seconds:.1f} s")
    return {n: lab.ip(n) for n in DNS_NODES}


@pytest.mark.parametrize("node", DNS_NODES)
@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_checkdmarc_parses_the_records(converged, node, domain):
    ns = [converged[node]]
    conf = DOMAINS[domain]
    spf = checkdmarc.spf.get_spf_record(domain, nameservers=ns)
    assert spf["parsed"]["all"] == "fail", spf
    dmarc = checkdmarc.dmarc.check_dmarc(domain, nameservers=ns)
    assert dmarc["valid"] and dmarc["warnings"] == [], dmarc
    assert dmarc["tags"]["p"]["value"] == conf["dmarc"]
    rua = [u["address"] for u in dmarc["tags"]["rua"]["value"]]
    assert "postmaster@example.test" in rua
    for address in rua:  # raises unless the report domain authorizes this one's reports
        checkdmarc.dmarc.verify_dmarc_report_destination(
            domain, address.split("@")[1], nameservers=ns
        )
    sts = checkdmarc.mta_sts.query_mta_sts_record(domain, nameservers=ns)
    assert sts["warnings"] == [], sts
    tags = checkdmarc.mta_sts.parse_mta_sts_record(sts["record"])["tags"]
    assert tags["v"] == "STSv1" and tags["id"].isalnum(), tags
    rpt = checkdmarc.smtp_tls_reporting.check_smtp_tls_reporting(domain, nameservers=ns)
    assert rpt["valid"] and rpt["warnings"] == [], rpt
    want = "postmaster@example.test" if domain == "sales.test" else f"postmaster@{domain}"
    assert rpt["tags"]["rua"]["value"] == [f"mailto:{want}"]


def test_dkim_records_are_the_pillars_on_both_servers(converged, lab):
    """The DKIM TXT of each domain (pillar mailcluster_dkim, made on the master) is served
    whole by both servers, however many 255-octet strings it was split into."""
    dkim = salt_call_json(lab, "ns1", "pillar.get", "mailcluster_dkim", "unmask=True")
    assert set(dkim) >= set(DOMAINS), dkim
    for domain, entry in dkim.items():
        for node, ip in converged.items():
            got = query_txt(ip, f"{entry['selector']}._domainkey.{domain}")
            assert got == [entry["txt"]], (node, domain, got)
            assert len(entry["txt"]) > 255  # a 2048-bit key: more than one string


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_mta_sts_policy_served_by_name(converged, domain):
    ns1 = converged["ns1"]
    name = f"mta-sts.{domain}"
    (ip,) = query(ns1, name, "A")
    status, ctype, body = fetch(ip, name, "/.well-known/mta-sts.txt")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype, body)
    policy = checkdmarc.mta_sts.parse_mta_sts_policy(body)["policy"]
    mx = sorted(r.split()[1].rstrip(".") for r in query(ns1, domain, "MX"))
    assert set(mx) <= set(policy["mx"]) and len(mx) == 2
    for host in mx:  # an MX target is never an alias (RFC 2181 10.3): its own A record
        assert query(ns1, host, "CNAME") == [] and len(query(ns1, host, "A")) >= 1, host
    # the other mx lines: the names of before layout cluster, aliases of the MX hosts
    for name in set(policy["mx"]) - set(mx):
        assert next(t.rstrip(".") for t in query(ns1, name, "CNAME")) in mx, name
    assert policy["mode"] == DOMAINS[domain]["sts_mode"]
    # the record's id is the digest of this very policy: it changes when the policy does
    sts = checkdmarc.mta_sts.query_mta_sts_record(domain, nameservers=[ns1])["record"]
    assert f"id={hashlib.sha256(body.encode()).hexdigest()[:20]}" in sts


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_autoconfig_and_autodiscover_name_working_servers(converged, domain):
    ns1 = converged["ns1"]
    user = DOMAINS[domain]["user"]
    name = f"autoconfig.{domain}"
    (ip,) = query(ns1, name, "A")
    path = f"/mail/config-v1.1.xml?emailaddress={user}"
    bodies = [fetch(ip, name, path, tls=tls) for tls in (False, True)]
    assert [b[0] for b in bodies] == [200, 200], bodies
    assert bodies[0][2] == bodies[1][2]
    provider = ET.fromstring(bodies[0][2]).find("emailProvider")
    assert provider.get("id") == domain and provider.findtext("domain") == domain
    servers = {
        (s.tag, s.get("type"), s.findtext("socketType")): (
            s.findtext("hostname"),
            int(s.findtext("port")),
        )
        for s in provider
        if s.tag in ("incomingServer", "outgoingServer")
    }
    host = f"mail.{domain}"
    assert servers[("incomingServer", "imap", "SSL")] == (host, 993)
    assert servers[("outgoingServer", "smtp", "STARTTLS")] == (host, 587)

    # Outlook: POST to autodiscover.<domain>
    name = f"autodiscover.{domain}"
    (ip,) = query(ns1, name, "A")
    status, ctype, body = fetch(
        ip,
        name,
        "/autodiscover/autodiscover.xml",
        method="POST",
        body=AUTODISCOVER_REQUEST.format(address=user),
    )
    assert status == 200 and "xml" in ctype, (status, ctype, body)
    protocols = {
        p.findtext(f"{OUTLOOK}Type"): p for p in ET.fromstring(body).iter(f"{OUTLOOK}Protocol")
    }
    assert protocols["IMAP"].findtext(f"{OUTLOOK}Server") == host
    assert protocols["IMAP"].findtext(f"{OUTLOOK}Port") == "993"
    assert protocols["IMAP"].findtext(f"{OUTLOOK}SSL") == "on"
    assert protocols["SMTP"].findtext(f"{OUTLOOK}Port") == "587"
    assert protocols["SMTP"].findtext(f"{OUTLOOK}Encryption") == "TLS"

    # what the client was told works: the host resolves (both service IPs), IMAPS and
    # submission with STARTTLS take the mailbox's login
    (alias,) = query(ns1, host, "CNAME")  # a resolver follows it (the servers do not recurse)
    addrs = query(ns1, alias, "A")
    assert len(addrs) == 2
    for addr in addrs:
        with imaplib.IMAP4_SSL(addr, 993, ssl_context=_unverified(), timeout=10) as imap:
            assert imap.login(user, PASSWORDS[user])[0] == "OK"
        with smtplib.SMTP(addr, 587, timeout=10) as smtp:
            smtp.starttls(context=_unverified())
            assert smtp.login(user, PASSWORDS[user])[0] == 235


def test_second_apply_changes_nothing(converged, lab):
    ret, seconds = apply_all(lab, target="ns*", expect=DNS_NODES, timeout=600)
    failed, changed = state_results(ret)
    print(f"second apply of ns1, ns2: {seconds:.1f} s")
    assert not failed, "\n".join(failed)
    assert changed == [], changed
