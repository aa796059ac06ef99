"""
The records of a mail domain beyond its mail routing, and what the web role serves for it
(issue 13: DMARC, DKIM, MTA-STS, TLS-RPT, client set-up), computed from pillar in one place:

- :py:func:`records`: a domain's ``_dmarc``, ``<selector>._domainkey``, ``_mta-sts`` and
  ``_smtp._tls`` TXT records, the web names (``mta-sts.``, ``autoconfig.``, ``autodiscover.``:
  A records to the web nodes) and the SRV records of client set-up (RFC 6186, autodiscover);
  ``mailcluster_dns.zones`` adds them to every domain's zone;
- :py:func:`client_sites`: per domain, what the web role serves on those names (the MTA-STS
  policy whose digest is the ``_mta-sts`` record's id, the mail host and ports clients get);
- :py:func:`web_names`: the names of a domain the web role answers for (the certificates'
  names come from here too).

Settings: pillar ``dns:dmarc``, ``dns:mta_sts``, ``dns:tls_rpt`` (cluster defaults over
:py:data:`DEFAULTS`), then ``mailcluster:domains:<domain>:dmarc`` etc. (per domain). DKIM:
pillar ``mailcluster_dkim:<domain>`` = ``{selector, txt}`` (made on the master); no record
without it. Nothing here reads grains or runs a command: the failover runner computes the
zones on the master with these functions (``_runners/mcheal_dns.py``).
"""

import copy
import hashlib
import logging
import re

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_records"

PILLAR_KEY = "mailcluster"
DKIM_PILLAR_KEY = "mailcluster_dkim"

#: the names of each mail domain the web role answers for: <label>.<domain>
WEB_LABELS = ("mta-sts", "autoconfig", "autodiscover")

#: what the mail role serves to clients (salt/mail/files: dovecot with ssl = yes listens on
#: 993/995 and 143 with STARTTLS; postfix's submission service on 587 with STARTTLS)
CLIENT_SERVICES = (
    {"type": "imap", "port": 993, "socket": "SSL", "srv": "_imaps._tcp"},
    {"type": "imap", "port": 143, "socket": "STARTTLS", "srv": "_imap._tcp"},
    {"type": "pop3", "port": 995, "socket": "SSL", "srv": "_pop3s._tcp"},
    {"type": "smtp", "port": 587, "socket": "STARTTLS", "srv": "_submission._tcp"},
)

#: cluster defaults, under pillar dns:<key> (rua null: postmaster@<domain>; [] none)
DEFAULTS = {
    "dmarc": {"policy": "none", "sp": None, "pct": None, "rua": None},
    "mta_sts": {"mode": "testing", "max_age": 604800},
    "tls_rpt": {"rua": None},
}

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def __virtual__():
    if "mailcluster.nodes_with" not in __salt__:
        return (False, "the mailcluster execution module is not loaded")
    return __virtualname__


def _cluster(mc=None):
    return mc or __pillar__.get(PILLAR_KEY) or {}


def _nodes_with(role, mc):
    return __salt__["mailcluster.nodes_with"](role, {PILLAR_KEY: mc})


def _txt(text):
    """TXT data in zone-file syntax: quoted strings of at most 255 octets each."""
    raw = text.encode("ascii")
    chunks = [raw[i : i + 255].decode() for i in range(0, len(raw), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _addresses(value, domain):
    if value is None:
        return [f"postmaster@{domain}"]
    return [value] if isinstance(value, str) else list(value)


def _mailto(addresses):
    return ",".join(f"mailto:{a}" for a in addresses)


def settings(domain, _mc=None):
    """
    The DMARC, MTA-STS and TLS-RPT settings of ``domain``: the defaults, pillar ``dns:<key>``,
    then ``mailcluster:domains:<domain>:<key>``, with the report addresses filled in.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.settings example.test
    """
    mc = _cluster(_mc)
    cluster = __pillar__.get("dns") or {}
    own = ((mc.get("domains") or {}).get(domain)) or {}
    out = {}
    for key, default in DEFAULTS.items():
        merged = copy.deepcopy(default)
        for layer in (cluster.get(key), own.get(key)):
            merged.update(layer or {})
        if "rua" in merged:
            merged["rua"] = _addresses(merged["rua"], domain)
        out[key] = merged
    return out


def web_names(domain):
    """
    The names of mail domain ``domain`` the web role serves (MTA-STS policy, Thunderbird
    autoconfig, Outlook autodiscover); each has A records to the web nodes. The one place
    these names are made: zones, the web role and certificates take them from here.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.web_names example.test
    """
    return [f"{label}.{domain}" for label in WEB_LABELS]


#: pillar dns:layout: where the mail hosts' addresses live (docs/dns-scale.md)
LAYOUTS = ("cluster", "per_domain")
#: what an unset dns:layout means
DEFAULT_LAYOUT = "cluster"


def mail_names(_mc=None, _dns=None):
    """
    How the mail hosts are named (pillar ``dns:layout``, ``dns:cluster_zone``,
    ``dns:rr_name``): ``{"layout", "zone", "rr", "host", "nodes"}``.

    - ``cluster``: the addresses live in ONE zone, ``zone`` (``dns:cluster_zone``,
      default ``mailcluster:cluster:domain``): ``host`` = ``<rr>.<zone>`` (round robin) and,
      per mail node, ``nodes[n]`` = ``<n>.<rr>.<zone>``. Each domain's MX names those hosts
      (an MX target must not be a CNAME, RFC 2181 10.3) and ``<rr>.<domain>`` is a CNAME to
      ``host``: a failover changes the one zone whatever the number of domains.
    - ``per_domain`` (the layout before issue 14): every domain holds ``<n>.<domain>`` and
      ``<rr>.<domain>`` A records; ``zone`` is None and ``nodes[n]`` is ``<n>``.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.mail_names
    """
    mc = _cluster(_mc)
    dns_pillar = (__pillar__.get("dns") if _dns is None else _dns) or {}
    rr = dns_pillar.get("rr_name") or "mail"
    layout = dns_pillar.get("layout") or DEFAULT_LAYOUT
    if layout not in LAYOUTS:
        raise ValueError(f"dns:layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    mail = _nodes_with("mail", mc)
    if layout == "per_domain":
        return {"layout": layout, "zone": None, "rr": rr, "host": None, "nodes": {}}
    zone = str(dns_pillar.get("cluster_zone") or mc["cluster"]["domain"]).rstrip(".").lower()
    return {
        "layout": layout,
        "zone": zone,
        "rr": rr,
        "host": f"{rr}.{zone}",
        "nodes": {n: f"{n}.{rr}.{zone}" for n in mail},
    }


def mx_hosts(domain, _mc=None):
    """
    The MX hosts of ``domain`` as its zone's MX records name them: ``<node>.<rr>.<cluster
    zone>`` (layout ``cluster``), ``<mail node>.<domain>`` (layout ``per_domain``).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.mx_hosts example.test
    """
    names = mail_names(_mc)
    if names["layout"] == "cluster":
        return list(names["nodes"].values())
    return legacy_hosts(domain, _mc)


def legacy_hosts(domain, _mc=None):
    """
    ``<mail node>.<domain>``: the MX hosts of layout ``per_domain``. Layout ``cluster`` keeps
    them as CNAMEs to the cluster zone's hosts, so that a resolver holding an MX record of
    before the migration still finds a host that follows the failover.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.legacy_hosts example.test
    """
    return [f"{n}.{domain}" for n in _nodes_with("mail", _cluster(_mc))]


def sts_policy(domain, _mc=None):
    """
    The MTA-STS policy of ``domain`` (RFC 8461): ``{"text", "id", "mode", "max_age", "mx"}``.
    ``id`` is a digest of the text: the ``_mta-sts`` record changes exactly when the policy
    does (the MX hosts, mode or max_age). It never depends on a failover (the MX records
    name every mail node whatever is withdrawn). ``mx``: the MX hosts; the policy's ``mx:``
    lines add the legacy ``<node>.<domain>`` names (:py:func:`legacy_hosts`).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.sts_policy example.test
    """
    conf = settings(domain, _mc)["mta_sts"]
    mx = mx_hosts(domain, _mc)
    # the legacy names too: a sender holding an MX record of before a migration to layout
    # cluster (TTL) still matches the policy (docs/dns-scale.md)
    allowed = list(dict.fromkeys(mx + legacy_hosts(domain, _mc)))
    lines = ["version: STSv1", f"mode: {conf['mode']}"]
    lines += [f"mx: {h}" for h in allowed]
    lines.append(f"max_age: {int(conf['max_age'])}")
    text = "\n".join(lines) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return {"text": text, "id": digest, "mode": conf["mode"], "max_age": conf["max_age"], "mx": mx}


def _dkim(domain):
    entry = (__pillar__.get(DKIM_PILLAR_KEY) or {}).get(domain) or {}
    selector, txt = entry.get("selector"), entry.get("txt")
    if not selector or not txt:
        return None
    if not _LABEL_RE.match(str(selector)):
        log.warning("%s:%s:selector %r is not a DNS label", DKIM_PILLAR_KEY, domain, selector)
        return None
    return selector, str(txt)


def records(domain, ttl=300, mail_host="mail", _mc=None, mail_target=None):
    """
    The records issue 13 adds for ``domain``, ``{zone: [[name, ttl, type, data], ...]}``:
    mostly the domain's own zone; a DMARC report address in another domain the cluster
    serves adds that zone's authorization (``<domain>._report._dmarc``, RFC 7489 7.1).
    ``mail_host``: the label clients connect to (pillar ``dns:rr_name``); ``mail_target``:
    the SRV target when that label is a CNAME (an SRV target must not be one, RFC 2782).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.records example.test
    """
    mc = _cluster(_mc)
    conf = settings(domain, mc)
    ttl = int(ttl)
    web_ips = [mc["nodes"][n]["ip"] for n in _nodes_with("web", mc)]
    own = []
    out = {domain: own}

    dmarc = conf["dmarc"]
    parts = ["v=DMARC1", f"p={dmarc['policy']}"]
    if dmarc.get("sp"):
        parts.append(f"sp={dmarc['sp']}")
    if dmarc.get("pct") is not None:
        parts.append(f"pct={int(dmarc['pct'])}")
    if dmarc["rua"]:
        parts.append(f"rua={_mailto(dmarc['rua'])}")
    own.append(["_dmarc", ttl, "TXT", _txt("; ".join(parts))])
    domains = mc.get("domains") or {}
    for other in sorted({a.rsplit("@", 1)[1].lower() for a in dmarc["rua"]} - {domain}):
        # a lookup, not a set of every domain per domain (quadratic at 10,000 domains)
        if other in domains and not (domains[other] or {}).get("absent"):
            auth = [f"{domain}._report._dmarc", ttl, "TXT", _txt("v=DMARC1")]
            out.setdefault(other, []).append(auth)

    dkim = _dkim(domain)
    if dkim:
        own.append([f"{dkim[0]}._domainkey", ttl, "TXT", _txt(dkim[1])])

    if conf["tls_rpt"]["rua"]:
        rpt = f"v=TLSRPTv1; rua={_mailto(conf['tls_rpt']['rua'])}"
        own.append(["_smtp._tls", ttl, "TXT", _txt(rpt)])

    if web_ips:  # the policy and the client set-up are served by the web role only
        own.append(["_mta-sts", ttl, "TXT", _txt(f"v=STSv1; id={sts_policy(domain, mc)['id']}")])
        for name in web_names(domain):
            label = name[: -len(domain) - 1]
            own += [[label, ttl, "A", ip] for ip in web_ips]
        own.append(["_autodiscover._tcp", ttl, "SRV", f"0 0 443 autodiscover.{domain}."])
    target = mail_target or f"{mail_host}.{domain}"
    for svc in CLIENT_SERVICES:
        own.append([svc["srv"], ttl, "SRV", f"0 1 {svc['port']} {target}."])
    return out


def client_sites(_mc=None):
    """
    What the web role serves for every mail domain: its web names, the MTA-STS policy, and
    the host and ports mail clients are told (Thunderbird autoconfig, Outlook autodiscover).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_records.client_sites
    """
    mc = _cluster(_mc)
    mail_host = (__pillar__.get("dns") or {}).get("rr_name") or "mail"
    sites = []
    for domain, conf in sorted((mc.get("domains") or {}).items()):
        if (conf or {}).get("absent"):
            continue
        sites.append(
            {
                "domain": domain,
                "names": web_names(domain),
                "mta_sts": sts_policy(domain, mc),
                "mail_host": f"{mail_host}.{domain}",
                "services": [dict(s) for s in CLIENT_SERVICES],
            }
        )
    return sites
