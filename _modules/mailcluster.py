"""
Mail cluster topology: pillar validation, per-role map data, DNS zones and DB rows.

Every decision the state tree makes from the site pillar lives here rather than in Jinja:

- :py:func:`validate` checks the ``mailcluster`` pillar and names the offending key;
  :py:func:`top_sls` and :py:func:`mapdata` raise on invalid pillar, so a highstate stops while
  rendering, before any state runs.
- :py:func:`mapdata` stacks ``<role>/parameters/defaults.yaml``, pillar ``<role>:lookup`` and
  ``<role>``, and the facts this node needs from the topology (``cluster`` key).
- :py:func:`zones` computes every DNS zone (SOA, NS, MX, round-robin A, SPF);
  :py:func:`dns_sync` writes changed zone files on the DNS primary, bumping the serial only when
  the records change, with ``rndc freeze``/``thaw`` around dynamic zones.
- :py:func:`db_sync` keeps Postfix Admin's ``domain``, ``mailbox`` and ``alias`` rows in step
  with pillar in one transaction; :py:func:`replica_status`/:py:func:`replica_configure` drive
  MariaDB GTID replication.

The pillar layout is documented in ``pillar.example``.
"""

import contextlib
import copy
import datetime
import hashlib
import ipaddress
import json
import logging
import os
import re
import tempfile
import time
import warnings

import salt.utils.dictupdate
import salt.utils.files
from salt.exceptions import CommandExecutionError

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, still shipped with Debian's python3.11

    HAS_CRYPT = True
except ImportError:  # pragma: no cover
    HAS_CRYPT = False

try:
    import dns.message
    import dns.name
    import dns.query
    import dns.rdatatype
    import dns.zone

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover
    HAS_DNSPYTHON = False

try:
    import pymysql

    HAS_PYMYSQL = True
except ImportError:  # pragma: no cover
    HAS_PYMYSQL = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster"

PILLAR_KEY = "mailcluster"

#: role name in pillar -> the SLS it selects (empty: no states of its own)
ROLE_SLS = {
    # every node: the minion watchdog (a deaf minion cannot be verified or repaired through)
    "common": ["common", "selfheal.watchdog"],
    "db_primary": ["db.primary"],
    "db_replica": ["db.replica"],
    "dns_primary": ["dns.primary"],
    "dns_secondary": ["dns.secondary"],
    "storage": ["storage"],
    "mail": ["mail"],
    # the self-healing beacon watches the heartbeat pair, so it comes with the ha role
    "ha": ["ha", "selfheal"],
    "graphs": ["graphs"],
    "web": ["web"],
    "master": [],
}
SLS_ORDER = [
    "common",
    "selfheal.watchdog",
    "db.primary",
    "db.replica",
    "dns.primary",
    "dns.secondary",
    "storage",
    "mail",
    "ha",
    "selfheal",
    "graphs",
    "web",
]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.[a-z][a-z0-9-]*[a-z0-9]$")
LOCAL_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
NODE_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

#: secrets every cluster needs, by the role that needs them
ROLE_SECRETS = {
    "common": [("ca", "cert"), ("ca", "key")],
    "db_primary": [
        ("db", "replication"),
        ("db", "postfix"),
        ("db", "dovecot"),
        ("db", "postfixadmin"),
    ],
    "db_replica": [("db", "replication")],
    "mail": [("db", "postfix"), ("db", "dovecot")],
    "ha": [("heartbeat", "authkey")],
    "dns_primary": [("tsig", "secret")],
    "web": [
        ("db", "roundcube"),
        ("db", "postfixadmin"),
        ("roundcube", "des_key"),
        ("postfixadmin", "setup_password"),
        ("postfixadmin", "admin_password"),
    ],
}


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- pillar access
def _cluster(pillar=None):
    if pillar is None:
        pillar = __pillar__
    return pillar.get(PILLAR_KEY) or {}


def _node_id(node=None):
    return node or __grains__["id"]


def _dig(data, *keys):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _network(mc, name):
    node = mc["nodes"][name]
    return ipaddress.ip_network(node.get("network") or mc["cluster"]["network"], strict=False)


# --------------------------------------------------------------------------- validation
def _validate_nodes(mc, errors):
    cluster = mc.get("cluster")
    if not isinstance(cluster, dict):
        errors.append(f"{PILLAR_KEY}:cluster: missing (needs domain and network)")
        cluster = {}
    domain = cluster.get("domain")
    if not isinstance(domain, str) or not DOMAIN_RE.match(domain):
        errors.append(f"{PILLAR_KEY}:cluster:domain: not a valid domain name: {domain!r}")
    try:
        ipaddress.ip_network(cluster.get("network"), strict=False)
    except (TypeError, ValueError):
        errors.append(f"{PILLAR_KEY}:cluster:network: not a network: {cluster.get('network')!r}")
        return
    dcs = mc.get("datacentres") or {}
    nodes = mc.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        errors.append(f"{PILLAR_KEY}:nodes: missing or empty")
        return
    for name, node in nodes.items():
        key = f"{PILLAR_KEY}:nodes:{name}"
        if not NODE_RE.match(str(name)):
            errors.append(f"{key}: not a valid node name")
        if not isinstance(node, dict):
            errors.append(f"{key}: must be a mapping")
            continue
        try:
            net = ipaddress.ip_network(node.get("network") or cluster["network"], strict=False)
        except ValueError:
            errors.append(f"{key}:network: not a network: {node.get('network')!r}")
            continue
        for field in ("ip", "service_ip"):
            if field not in node:
                continue
            try:
                addr = ipaddress.ip_address(node[field])
            except ValueError:
                errors.append(f"{key}:{field}: not an IP address: {node[field]!r}")
                continue
            if addr not in net:
                errors.append(f"{key}:{field}: {addr} is outside the node's network {net}")
        if "ip" not in node:
            errors.append(f"{key}:ip: missing")
        roles = node.get("roles")
        if not isinstance(roles, list) or not roles:
            errors.append(f"{key}:roles: missing or not a list")
            continue
        for role in roles:
            if role not in ROLE_SLS:
                errors.append(
                    f"{key}:roles: unknown role {role!r} (known: {', '.join(sorted(ROLE_SLS))})"
                )
        if "mail" in roles and "service_ip" not in node:
            errors.append(f"{key}:service_ip: missing (required by role mail)")
        if "mail" in roles and "storage" not in roles:
            errors.append(f"{key}:roles: role mail needs role storage on the same node")
        if node.get("dc") is not None and dcs and node["dc"] not in dcs:
            errors.append(f"{key}:dc: unknown data centre {node['dc']!r}")
        if "db" in node and node["db"] not in nodes:
            errors.append(f"{key}:db: unknown node {node['db']!r}")
    with_role = {r: nodes_with(r, {PILLAR_KEY: mc}) for r in ROLE_SLS}
    for role in ("db_primary", "dns_primary"):
        if len(with_role[role]) > 1:
            errors.append(f"{PILLAR_KEY}:nodes: role {role} on several nodes: {with_role[role]}")
        replica = role.split("_")[0] + ("_replica" if role == "db_primary" else "_secondary")
        if not with_role[role] and (with_role["mail"] or with_role[replica]):
            errors.append(f"{PILLAR_KEY}:nodes: no node has role {role}")
    if with_role["ha"] and len(with_role["ha"]) != 2:
        errors.append(f"{PILLAR_KEY}:nodes: role ha needs exactly two nodes, has {with_role['ha']}")
    for name in with_role["web"]:
        if name not in with_role["db_primary"]:
            errors.append(
                f"{PILLAR_KEY}:nodes:{name}:roles: role web must sit with db_primary "
                "(Roundcube and Postfix Admin write to the local primary)"
            )


def _validate_domains(mc, errors):
    domains = mc.get("domains") or {}
    if not isinstance(domains, dict):
        errors.append(f"{PILLAR_KEY}:domains: must be a mapping of domain name to settings")
        return
    secrets = mc.get("secrets") or {}
    mailbox_pw = secrets.get("mailboxes") or {}
    for dom, conf in domains.items():
        key = f"{PILLAR_KEY}:domains:{dom}"
        if not isinstance(dom, str) or not DOMAIN_RE.match(dom):
            errors.append(f"{key}: not a valid domain name")
            continue
        conf = conf or {}
        if not isinstance(conf, dict):
            errors.append(f"{key}: must be a mapping")
            continue
        seen = {}
        for idx, box in enumerate(conf.get("mailboxes") or []):
            bkey = f"{key}:mailboxes:{idx}"
            if not isinstance(box, dict) or "name" not in box:
                errors.append(f"{bkey}: needs a name")
                continue
            local = box["name"]
            if not isinstance(local, str) or not LOCAL_RE.match(local):
                errors.append(f"{bkey}:name: not a valid local part: {local!r}")
                continue
            if local in seen:
                errors.append(
                    f"{bkey}:name: duplicate mailbox {local}@{dom} (also entry {seen[local]})"
                )
                continue
            seen[local] = idx
            addr = f"{local}@{dom}"
            if not box.get("absent") and not box.get("password_hash") and addr not in mailbox_pw:
                errors.append(
                    f"{PILLAR_KEY}:secrets:mailboxes:{addr}: missing secret "
                    f"(password for {bkey}, or set password_hash there)"
                )
        aliases = conf.get("aliases") or {}
        if not isinstance(aliases, dict):
            errors.append(f"{key}:aliases: must map local part to a list of addresses")
            continue
        for local, goto in aliases.items():
            akey = f"{key}:aliases:{local}"
            if not LOCAL_RE.match(str(local)):
                errors.append(f"{akey}: not a valid local part")
            elif local in seen:
                errors.append(f"{akey}: duplicate of mailbox {local}@{dom}")
            if goto is None or (isinstance(goto, dict) and goto.get("absent")):
                continue
            targets = goto if isinstance(goto, list) else [goto]
            for target in targets:
                if not isinstance(target, str) or "@" not in target:
                    errors.append(f"{akey}: target {target!r} is not an address")


def _validate_secrets(mc, errors):
    secrets = mc.get("secrets") or {}
    roles = {r for node in (mc.get("nodes") or {}).values() for r in (node or {}).get("roles", [])}
    needed = sorted({path for role in roles for path in ROLE_SECRETS.get(role, [])})
    for path in needed:
        value = _dig(secrets, *path)
        if value in (None, ""):
            errors.append(f"{PILLAR_KEY}:secrets:{':'.join(path)}: missing secret")


def validate(pillar=None):
    """
    Check the ``mailcluster`` pillar and return the list of problems, each starting with the
    pillar key it concerns (empty list: the pillar is valid).

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.validate
    """
    mc = _cluster(pillar)
    if not mc:
        return [f"{PILLAR_KEY}: missing (no cluster topology in pillar)"]
    errors = []
    _validate_nodes(mc, errors)
    _validate_domains(mc, errors)
    _validate_secrets(mc, errors)
    return errors


def check(pillar=None):
    """
    Raise ``CommandExecutionError`` naming every bad pillar key; return True if valid.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.check
    """
    errors = validate(pillar)
    if errors:
        raise CommandExecutionError("invalid pillar: " + "; ".join(errors))
    return True


# --------------------------------------------------------------------------- topology
def node_roles(node=None):
    """
    Roles pillar gives a node (this minion by default).

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.node_roles
    """
    return list((_cluster()["nodes"].get(_node_id(node)) or {}).get("roles") or [])


def top_sls(node=None):
    """
    The SLS list for a node, from its pillar roles, after ``common.pillar`` (the pillar check,
    which fails hard). On invalid pillar only ``common.pillar`` is returned: the highstate then
    consists of one failed state whose comment names the bad keys, and changes nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.top_sls
    """
    if validate():
        return ["common.pillar"]
    wanted = {sls for role in node_roles(node) for sls in ROLE_SLS[role]}
    return ["common.pillar"] + [sls for sls in SLS_ORDER if sls in wanted]


def nodes_with(role, pillar=None):
    """
    Sorted names of the nodes that have ``role``.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.nodes_with mail
    """
    nodes = _cluster(pillar).get("nodes") or {}
    return sorted(n for n, d in nodes.items() if role in (d or {}).get("roles", []))


def _fqdn(mc, name):
    return f"{name}.{mc['cluster']['domain']}"


def _db_sources(mc, name):
    """DB nodes a mail node reads from: its pillar choice or the nearest one, then the primary."""
    node = mc["nodes"][name]
    primary = nodes_with("db_primary", {PILLAR_KEY: mc})
    db_nodes = nodes_with("db_replica", {PILLAR_KEY: mc}) + primary
    if node.get("db"):
        first = node["db"]
    else:
        near = [n for n in db_nodes if mc["nodes"][n].get("dc") == node.get("dc")]
        first = (near or primary)[0]
    order = [first] + [n for n in primary if n != first]
    return [mc["nodes"][n]["ip"] for n in order]


def _common_facts(mc, name):
    nodes = mc["nodes"]
    hosts = []
    for other in sorted(nodes):
        hosts.append({"ip": nodes[other]["ip"], "names": [_fqdn(mc, other), other]})
        if nodes[other].get("service_ip"):
            svc = f"{other}-svc"
            hosts.append({"ip": nodes[other]["service_ip"], "names": [_fqdn(mc, svc), svc]})
    dns_nodes = nodes_with("dns_primary", {PILLAR_KEY: mc}) + nodes_with(
        "dns_secondary", {PILLAR_KEY: mc}
    )
    me = nodes[name]
    san_ips = [me["ip"]]
    if "ha" in me.get("roles", []):
        san_ips += [nodes[n]["service_ip"] for n in nodes_with("ha", {PILLAR_KEY: mc})]
    elif me.get("service_ip"):
        san_ips.append(me["service_ip"])
    san_names = [_fqdn(mc, name), name, f"mail.{mc['cluster']['domain']}"]
    secrets = mc.get("secrets") or {}
    tls = secrets.get("tls") or {}
    return {
        "hosts": hosts,
        "nameservers": [nodes[n]["ip"] for n in dns_nodes],
        "search": mc["cluster"]["domain"],
        "ca": {"cert": _dig(secrets, "ca", "cert"), "key": _dig(secrets, "ca", "key")},
        "cert": {
            "cn": _fqdn(mc, name),
            "san": ", ".join([f"DNS:{n}" for n in san_names] + [f"IP:{ip}" for ip in san_ips]),
            # a real certificate and key from pillar replace the cluster-signed one
            "pem": _dig(tls, name, "cert"),
            "key_pem": _dig(tls, name, "key"),
        },
    }


def _db_facts(mc, name):
    pl = {PILLAR_KEY: mc}
    secrets = mc["secrets"]
    primary = nodes_with("db_primary", pl)
    db_nodes = primary + nodes_with("db_replica", pl)
    mail_ips = [mc["nodes"][n]["ip"] for n in nodes_with("mail", pl)]
    replica_ips = [mc["nodes"][n]["ip"] for n in nodes_with("db_replica", pl)]
    users = []
    for ip in mail_ips:
        users.append(
            {
                "name": "postfix",
                "host": ip,
                "password": secrets["db"]["postfix"],
                "tables": ["domain", "mailbox", "alias", "alias_domain"],
            }
        )
        users.append(
            {
                "name": "dovecot",
                "host": ip,
                "password": secrets["db"]["dovecot"],
                "tables": ["domain", "mailbox"],
            }
        )
    me = mc["nodes"][name]
    return {
        "role": "primary" if name in primary else "replica",
        "server_id": me.get("db_server_id", db_nodes.index(name) + 1 if name in db_nodes else 0),
        "bind_address": me["ip"],
        "primary_ip": mc["nodes"][primary[0]]["ip"] if primary else None,
        "replication": {
            "user": "repl",
            "password": secrets["db"]["replication"],
            "hosts": replica_ips,
        },
        "readers": users,
        "postfixadmin_password": _dig(secrets, "db", "postfixadmin"),
    }


def _mail_facts(mc, name):
    me = mc["nodes"][name]
    return {
        "fqdn": _fqdn(mc, name),
        "service_ip": me["service_ip"],
        "db_hosts": _db_sources(mc, name),
        "db_password": {
            "postfix": mc["secrets"]["db"]["postfix"],
            "dovecot": mc["secrets"]["db"]["dovecot"],
        },
        "network": str(_network(mc, name)),
    }


def _ha_facts(mc, name):
    pl = {PILLAR_KEY: mc}
    pair = nodes_with("ha", pl)
    net = _network(mc, name)
    return {
        "nodes": [{"name": n, "ip": mc["nodes"][n]["ip"]} for n in pair],
        "peers": [mc["nodes"][n]["ip"] for n in pair if n != name],
        "resources": [
            {"node": n, "ip": mc["nodes"][n]["service_ip"], "prefix": net.prefixlen} for n in pair
        ],
        "authkey": mc["secrets"]["heartbeat"]["authkey"],
        "interface": mc["cluster"].get("interface", "eth0"),
    }


#: grain the failover runner sets on the DNS nodes while a secondary acts as the primary
#: (the pillar primary is lost); the roles follow it until the runner restores the primary
ACTING_PRIMARY_GRAIN = "mailcluster_dns_acting_primary"


def dns_primary(pillar=None):
    """
    The node that takes dynamic updates: the one with role ``dns_primary`` in pillar, or the
    DNS node this minion's ``mailcluster_dns_acting_primary`` grain names (set by the failover
    runner while the pillar primary is lost). None without a DNS primary.

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster.dns_primary
    """
    pl = pillar if pillar is not None else __pillar__
    dns_nodes = nodes_with("dns_primary", pl) + nodes_with("dns_secondary", pl)
    acting = (__grains__ or {}).get(ACTING_PRIMARY_GRAIN)
    if acting and acting in dns_nodes:
        return acting
    primary = nodes_with("dns_primary", pl)
    return primary[0] if primary else None


def _dns_facts(mc, name):
    pl = {PILLAR_KEY: mc}
    dns_nodes = nodes_with("dns_primary", pl) + nodes_with("dns_secondary", pl)
    primary = dns_primary(pl)
    secondaries = sorted(n for n in dns_nodes if n != primary)
    return {
        "role": "primary" if name == primary else "secondary",
        "acting": primary is not None and primary not in nodes_with("dns_primary", pl),
        "primary_ip": mc["nodes"][primary]["ip"] if primary else None,
        "secondary_ips": [mc["nodes"][n]["ip"] for n in secondaries],
        "zones": sorted(zones(_mc=mc)),
        "tsig": {
            "algorithm": _dig(mc, "secrets", "tsig", "algorithm") or "hmac-sha256",
            "secret": _dig(mc, "secrets", "tsig", "secret"),
        },
    }


def _web_facts(mc, name):
    pl = {PILLAR_KEY: mc}
    secrets = mc["secrets"]
    mail_nodes = nodes_with("mail", pl)
    near = [n for n in mail_nodes if mc["nodes"][n].get("dc") == mc["nodes"][name].get("dc")]
    imap = (near or mail_nodes or [None])[0]
    return {
        "fqdn": _fqdn(mc, name),
        # one service IP is enough: heartbeat moves it to the peer when its node fails
        "mail_host": mc["nodes"][imap]["service_ip"] if imap else None,
        "mail_tls_name": f"mail.{mc['cluster']['domain']}",
        "graph_hosts": [
            {"name": n, "ip": mc["nodes"][n]["ip"], "port": _graphs_port()}
            for n in nodes_with("graphs", pl)
        ],
        "db": {
            "roundcube": secrets["db"]["roundcube"],
            "postfixadmin": secrets["db"]["postfixadmin"],
        },
        "des_key": secrets["roundcube"]["des_key"],
        "setup_password_hash": stable_hash(secrets["postfixadmin"]["setup_password"]),
        "admin_password": secrets["postfixadmin"]["admin_password"],
        "admin": f"admin@{mc['cluster']['domain']}",
    }


def _graphs_port():
    return int(_dig(__pillar__, "graphs", "port") or 8081)


def _graphs_facts(mc, name):
    # served under the path the web role proxies, so the CGI's own links work through it
    return {"ip": mc["nodes"][name]["ip"], "port": _graphs_port(), "path": f"/graphs/{name}/"}


_FACTS = {
    "graphs": _graphs_facts,
    "common": _common_facts,
    "db": _db_facts,
    "mail": _mail_facts,
    "ha": _ha_facts,
    "dns": _dns_facts,
    "web": _web_facts,
}


def mapdata(role, defaults=None, node=None):
    """
    The merged map for ``role`` on this node: ``defaults`` (the role's
    ``parameters/defaults.yaml``), then pillar ``<role>:lookup``, then pillar ``<role>``, plus the
    topology facts the role needs under ``cluster``. Raises on invalid pillar.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.mapdata mail
    """
    check()
    mc = _cluster()
    name = _node_id(node)
    data = copy.deepcopy(defaults or {})
    role_pillar = copy.deepcopy(__pillar__.get(role) or {})
    lookup = role_pillar.pop("lookup", {}) or {}
    data = salt.utils.dictupdate.merge(data, lookup, merge_lists=False)
    data = salt.utils.dictupdate.merge(data, role_pillar, merge_lists=False)
    data["role"] = role
    data["node"] = name
    if name in (mc.get("nodes") or {}) and role in _FACTS:
        data["cluster"] = _FACTS[role](mc, name)
    return data


# --------------------------------------------------------------------------- DNS zones
def _dns_params():
    dns_pillar = __pillar__.get("dns") or {}
    params = {
        "ttl": 300,
        "rr_name": "mail",
        "mx_preference": 10,
        "spf_policy": "-all",
        "hostmaster": "hostmaster",
        # a secondary that missed a NOTIFY (down at the time) is stale for at most this long
        "refresh": 300,
        "retry": 60,
        "expire": 1209600,
        "minimum": 300,
    }
    params.update({k: v for k, v in dns_pillar.items() if k in params})
    return params


def _withdrawn():
    """Nodes whose service IP DNS leaves out: pillar list plus a grain the failover can set."""
    pillar_list = _dig(__pillar__, "dns", "withdrawn") or []
    grain_list = __grains__.get("mailcluster_dns_withdrawn") or []
    return set(pillar_list) | set(grain_list)


def zones(_mc=None):
    """
    Every zone the cluster serves with its records (SOA excluded), keyed by zone name: the
    cluster's own domain (node names) and every pillar domain not marked absent.

    Each record is ``[name, ttl, type, data]`` with names relative to the zone.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster.zones
    """
    mc = _mc or _cluster()
    pl = {PILLAR_KEY: mc}
    params = _dns_params()
    ttl = params["ttl"]
    cdomain = mc["cluster"]["domain"]
    ns_names = [
        f"{n}.{cdomain}." for n in nodes_with("dns_primary", pl) + nodes_with("dns_secondary", pl)
    ]
    mail_nodes = nodes_with("mail", pl)
    withdrawn = _withdrawn() if _mc is None else set()
    live = [n for n in mail_nodes if n not in withdrawn] or mail_nodes  # never empty
    out = {}
    base = [["@", ttl, "NS", ns] for ns in ns_names]
    infra = list(base)
    for n, d in sorted(mc["nodes"].items()):
        infra.append([n, ttl, "A", d["ip"]])
        if d.get("service_ip"):
            infra.append([f"{n}-svc", ttl, "A", d["service_ip"]])
    out[cdomain] = infra
    svc_ips = [mc["nodes"][n]["service_ip"] for n in live]
    spf_ips = [f"ip4:{ip}" for ip in sorted(svc_ips)]
    spf = " ".join(["v=spf1", "mx", *spf_ips, params["spf_policy"]])
    for dom, conf in sorted((mc.get("domains") or {}).items()):
        if (conf or {}).get("absent"):
            continue
        recs = list(base)
        for n in mail_nodes:
            recs.append(["@", ttl, "MX", f"{params['mx_preference']} {n}.{dom}."])
            # a withdrawn node's name follows the round robin of the live ones
            targets = [mc["nodes"][n]["service_ip"]] if n in live else svc_ips
            recs += [[n, ttl, "A", ip] for ip in targets]
        recs += [[params["rr_name"], ttl, "A", ip] for ip in svc_ips]
        recs.append(["@", ttl, "TXT", f'"{spf}"'])
        out[dom] = recs
    return out


def _zone_text(zone, records, serial):
    p = _dns_params()
    mc = _cluster()
    primary = nodes_with("dns_primary")
    mname = f"{primary[0]}.{mc['cluster']['domain']}." if primary else f"ns.{zone}."
    lines = [
        f"; zone {zone}: written by salt (mailcluster.dns_sync), do not edit",
        f"$ORIGIN {zone}.",
        f"$TTL {p['ttl']}",
        f"@ {p['ttl']} IN SOA {mname} {p['hostmaster']}.{zone}. "
        f"( {serial} {p['refresh']} {p['retry']} {p['expire']} {p['minimum']} )",
    ]
    lines += [f"{n} {ttl} IN {t} {d}" for n, ttl, t, d in records]
    return "\n".join(lines) + "\n"


def _zone_set(zone, text=None, path=None):
    """(serial, set of records) of a zone parsed by dnspython, SOA left out."""
    origin = dns.name.from_text(zone)
    if path:
        z = dns.zone.from_file(path, origin=origin, relativize=True, check_origin=False)
    else:
        z = dns.zone.from_text(text, origin=origin, relativize=True, check_origin=False)
    serial = 0
    recs = set()
    for name, ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "SOA":
            serial = rdata.serial
            # everything of the SOA but its serial is content
            soa = (
                rdata.mname,
                rdata.rname,
                rdata.refresh,
                rdata.retry,
                rdata.expire,
                rdata.minimum,
            )
            recs.add((name.to_text(), ttl, rtype, " ".join(str(v) for v in soa)))
            continue
        recs.add((name.to_text(), ttl, rtype, rdata.to_text()))
    return serial, recs


def _next_serial(old):
    today = int(datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")) * 100
    return max(int(old) + 1, today)


def soa_serial(zone, server="127.0.0.1", timeout=1.0):
    """
    The SOA serial ``server`` serves for ``zone``; None when it does not answer with one
    (the failover runner asks a DNS secondary this about the primary: one witness of its loss).

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster.soa_serial example.test server=10.88.0.21
    """
    query = dns.message.make_query(zone, "SOA")
    try:
        resp = dns.query.udp(query, server, timeout=float(timeout))
    except Exception:  # pylint: disable=broad-except
        return None
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def _serial_floors(plan, serial_floor):
    """
    Raise the planned serials above what must not be undercut: ``serial_floor`` (given by the
    failover runner: the serials an acting primary served) and, for a zone being written, the
    serial this node's BIND serves now (a secondary promoted to primary serves the copy it
    transferred; its secondaries only follow a higher serial). A zone at or under its floor
    is rewritten even when its records match.
    """
    for zone, step in plan.items():
        floor = int((serial_floor or {}).get(zone) or 0)
        if step["action"] == "cache":
            if step["serial"] > floor:
                continue
            step.update(action="update", old_serial=step["serial"])
        # only for a zone being written: one local query, never on a no-change run
        floor = max(floor, soa_serial(zone, timeout=0.5) or 0)
        step["serial"] = max(step["serial"], floor + 1)
    return plan


def _rndc(*args):
    res = __salt__["cmd.run_all"](["rndc", *args], python_shell=False, ignore_retcode=True)
    return res["retcode"] == 0, (res["stdout"] + res["stderr"]).strip()


def _merge_journal(zone, path, wait=3.0):
    """
    Have BIND write the dynamic updates of its journal into the zone file and drop the journal
    (``rndc sync -clean``). BIND may write the file after rndc has returned: wait, at most
    ``wait`` seconds, until the file carries the serial BIND serves, so that what is compared
    with pillar is what BIND serves.
    """
    merged, _ = _rndc("sync", "-clean", zone)
    if not merged:
        return  # BIND does not serve the zone as a primary from this file
    served = soa_serial(zone, timeout=0.5)
    deadline = time.monotonic() + float(wait)
    while served is not None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if _zone_set(zone, path=path)[0] >= served:
                return
        time.sleep(0.05)


def _check_zone(zone, path):
    res = __salt__["cmd.run_all"](
        ["named-checkzone", "-q", zone, path], python_shell=False, ignore_retcode=True
    )
    return res["retcode"] == 0, (res["stdout"] + res["stderr"]).strip()


def dns_plan(directory="/var/lib/bind/mailcluster", serial_floor=None):
    """
    Which zone files under ``directory`` differ from pillar, with their next serial. A zone is
    unchanged when its records (not its formatting or serial) equal the computed ones; a cache
    of what was last written keeps this a ``stat`` per zone. ``serial_floor`` (``{zone:
    serial}``): zones whose serial is not above it are rewritten with a higher one.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster.dns_plan
    """
    wanted = zones()
    cache_path = os.path.join(directory, ".mailcluster-state.json")
    try:
        with open(cache_path, encoding="utf-8") as fh:
            cache = json.load(fh)
    except (OSError, ValueError):
        cache = {}
    plan = {}
    for zone, records in sorted(wanted.items()):
        text = _zone_text(zone, records, 0)  # serial 0: the digest covers all but the serial
        digest = hashlib.sha256(text.encode()).hexdigest()
        path = os.path.join(directory, f"db.{zone}")
        try:
            st = os.stat(path)
        except OSError:
            st = None
        jnl = path + ".jnl"
        if st and os.path.exists(jnl):
            # merge pending dynamic updates into the file before comparing
            _merge_journal(zone, path)
            st = os.stat(path)
        hit = cache.get(zone)
        if (
            st
            and hit
            and hit["hash"] == digest
            and hit["mtime"] == st.st_mtime
            and hit["size"] == st.st_size
            and not os.path.exists(jnl)
            and zone not in (serial_floor or {})
        ):
            continue
        try:
            _, want_set = _zone_set(zone, text=text)
        except Exception:  # pylint: disable=broad-except
            want_set = None  # let named-checkzone report it

        old_serial = 0
        if st:
            try:
                old_serial, have_set = _zone_set(zone, path=path)
            except Exception as exc:  # pylint: disable=broad-except
                log.warning("zone %s: cannot parse %s: %s", zone, path, exc)
                have_set = None
            # a journal BIND could not merge (it does not serve the zone as a primary here)
            # belongs to an older file: the zone is written again, the journal dropped
            if have_set == want_set and not os.path.exists(jnl):
                plan[zone] = {"action": "cache", "hash": digest, "serial": old_serial}
                continue
        plan[zone] = {
            "action": "update" if st else "create",
            "hash": digest,
            "serial": _next_serial(old_serial),
            "old_serial": old_serial,
        }
    return _serial_floors(plan, serial_floor)


def dns_sync(directory="/var/lib/bind/mailcluster", test=False, serial_floor=None):
    """
    Write the zone files that differ from pillar (see :py:func:`dns_plan`). A zone BIND already
    serves is frozen (``rndc freeze``: journal merged into the file, updates paused), rewritten
    after ``named-checkzone`` passed on the new text, and thawed, so dynamic updates and
    highstate never write the file at the same time. Returns ``{"changed": {...}, "errors":
    {...}}``. ``serial_floor``: see :py:func:`dns_plan`.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster.dns_sync test=True
    """
    plan = dns_plan(directory, serial_floor=serial_floor)
    changed, errors = {}, {}
    if test:
        return {
            "changed": {z: p for z, p in plan.items() if p["action"] != "cache"},
            "errors": errors,
        }
    os.makedirs(directory, exist_ok=True)
    wanted = zones()
    cache_path = os.path.join(directory, ".mailcluster-state.json")
    try:
        with open(cache_path, encoding="utf-8") as fh:
            cache = json.load(fh)
    except (OSError, ValueError):
        cache = {}
    try:
        import pwd  # pylint: disable=import-outside-toplevel

        bind_ids = pwd.getpwnam("bind")[2:4]
    except (ImportError, KeyError):
        bind_ids = None
    for zone, step in plan.items():
        path = os.path.join(directory, f"db.{zone}")
        if step["action"] != "cache":
            frozen, _ = _rndc("freeze", zone) if step["action"] == "update" else (False, "")
            serial = step["serial"]
            if frozen:
                # the freeze may have merged a journal with a newer serial into the file
                with contextlib.suppress(Exception):
                    serial = max(serial, _next_serial(_zone_set(zone, path=path)[0]))
            text = _zone_text(zone, wanted[zone], serial)
            fd, tmp = tempfile.mkstemp(prefix=f".db.{zone}.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            ok, out = _check_zone(zone, tmp)
            if ok:
                os.chmod(tmp, 0o644)
                if bind_ids:
                    os.chown(tmp, *bind_ids)
                os.replace(tmp, path)
                # frozen: BIND merged the journal into the old file; not frozen: BIND does
                # not serve the zone as a dynamic primary here (a secondary being promoted
                # by the failover runner), and the journal of its last time as one does not
                # fit the new file: BIND would refuse the zone ("journal out of sync")
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + ".jnl")
                changed[zone] = {"old": step.get("old_serial") or None, "new": serial}
            else:
                os.remove(tmp)
                errors[zone] = out
            if frozen:
                _rndc("thaw", zone)
            if not ok:
                continue
        st = os.stat(path)
        cache[zone] = {"hash": step["hash"], "mtime": st.st_mtime, "size": st.st_size}
    for zone in [z for z in cache if z not in wanted]:
        del cache[zone]
    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(cache, fh)
    os.replace(tmp, cache_path)
    return {"changed": changed, "errors": errors}


# --------------------------------------------------------------------------- database
def _connect(database=None):
    if not HAS_PYMYSQL:
        raise CommandExecutionError("pymysql is not installed")
    try:
        return pymysql.connect(
            unix_socket="/run/mysqld/mysqld.sock",
            user="root",
            database=database,
            autocommit=False,
            charset="utf8mb4",
        )
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(f"cannot connect to MariaDB: {exc}") from exc


def password_hash(password):
    """
    A SHA512-CRYPT hash (the scheme dovecot and Postfix Admin's ``php_crypt:SHA512`` share).

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster.password_hash secret
    """
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def stable_hash(password):
    """
    A SHA512-CRYPT hash whose salt derives from the password, so that a config file holding it
    does not change on every run (for Postfix Admin's ``setup_password``).

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster.stable_hash secret
    """
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256(f"mailcluster:{password}".encode()).digest()
    salt_text = "".join(alphabet[b % 64] for b in digest[:16])
    return crypt.crypt(password, f"$6${salt_text}$")


def _password_ok(password, stored, pw_cache):
    if not stored:
        return False
    token = hashlib.sha256(f"{stored}\0{password}".encode()).hexdigest()
    if pw_cache.get(stored) == token:
        return True
    if crypt.crypt(password, stored) == stored:
        pw_cache[stored] = token
        return True
    return False


def _desired_rows():
    mc = _cluster()
    pw = _dig(mc, "secrets", "mailboxes") or {}
    domains, boxes, aliases = {}, {}, {}
    for dom, conf in sorted((mc.get("domains") or {}).items()):
        conf = conf or {}
        if conf.get("absent"):
            continue
        domains[dom] = {"description": conf.get("description", ""), "active": 1}
        for box in conf.get("mailboxes") or []:
            addr = f"{box['name']}@{dom}"
            if box.get("absent"):
                boxes[addr] = None
                continue
            boxes[addr] = {
                "name": box.get("full_name", box["name"]),
                "quota": int(box.get("quota_mb", 0)) * 1024 * 1024,
                "active": 0 if box.get("disabled") else 1,
                "password": pw.get(addr),
                "password_hash": box.get("password_hash"),
                "local_part": box["name"],
                "domain": dom,
            }
        for local, goto in (conf.get("aliases") or {}).items():
            addr = f"{local}@{dom}"
            if goto is None or (isinstance(goto, dict) and goto.get("absent")):
                aliases[addr] = None
                continue
            targets = goto if isinstance(goto, list) else [goto]
            aliases[addr] = ",".join(targets)
    return domains, boxes, aliases


def db_sync(database="postfixadmin", test=False, cache_file="/var/lib/mailcluster/pwcheck.json"):
    """
    Make Postfix Admin's ``domain``, ``mailbox`` and ``alias`` rows match pillar in one
    transaction: add what is missing, update what differs, delete mailboxes and aliases marked
    ``absent``. Rows pillar does not mention (made in Postfix Admin) are left alone. Returns
    the list of changes (``[]``: nothing to do).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster.db_sync test=True
    """
    domains, boxes, aliases = _desired_rows()
    try:
        with open(cache_file, encoding="utf-8") as fh:
            pw_cache = json.load(fh)
    except (OSError, ValueError):
        pw_cache = {}
    conn = _connect(database)
    changes = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT domain, description, active FROM domain")
            have_dom = {r[0]: r for r in cur.fetchall()}
            cur.execute("SELECT username, password, name, quota, active FROM mailbox")
            have_box = {r[0]: r for r in cur.fetchall()}
            cur.execute("SELECT address, goto, active FROM alias")
            have_alias = {r[0]: r for r in cur.fetchall()}
            sql = []
            for dom, want in domains.items():
                row = have_dom.get(dom)
                if row is None:
                    changes.append(f"domain {dom}: add")
                    sql.append(
                        (
                            "INSERT INTO domain (domain, description, aliases, mailboxes, maxquota,"
                            " quota, transport, backupmx, created, modified, active)"
                            " VALUES (%s, %s, 0, 0, 0, 0, 'virtual', 0, NOW(), NOW(), %s)",
                            (dom, want["description"], want["active"]),
                        )
                    )
                elif (row[1] or "", int(row[2])) != (want["description"], want["active"]):
                    changes.append(f"domain {dom}: update")
                    sql.append(
                        (
                            "UPDATE domain SET description=%s, active=%s, modified=NOW()"
                            " WHERE domain=%s",
                            (want["description"], want["active"], dom),
                        )
                    )
            for addr, want in boxes.items():
                row = have_box.get(addr)
                if want is None:
                    if row is not None:
                        changes.append(f"mailbox {addr}: remove")
                        sql.append(("DELETE FROM mailbox WHERE username=%s", (addr,)))
                        if addr in have_alias and have_alias[addr][1] == addr:
                            sql.append(("DELETE FROM alias WHERE address=%s", (addr,)))
                    continue
                if want["password_hash"]:
                    pw_ok = row is not None and row[1] == want["password_hash"]
                    new_hash = want["password_hash"]
                else:
                    pw_ok = row is not None and _password_ok(want["password"], row[1], pw_cache)
                    new_hash = None if pw_ok else password_hash(want["password"])
                if row is None:
                    changes.append(f"mailbox {addr}: add")
                    sql.append(
                        (
                            "INSERT INTO mailbox (username, password, name, maildir, quota,"
                            " local_part, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s, NOW(), NOW(), %s)",
                            (
                                addr,
                                new_hash,
                                want["name"],
                                f"{want['domain']}/{want['local_part']}/",
                                want["quota"],
                                want["local_part"],
                                want["domain"],
                                want["active"],
                            ),
                        )
                    )
                else:
                    if (row[2], int(row[3]), int(row[4])) != (
                        want["name"],
                        want["quota"],
                        want["active"],
                    ):
                        changes.append(f"mailbox {addr}: update")
                        sql.append(
                            (
                                "UPDATE mailbox SET name=%s, quota=%s, active=%s, modified=NOW()"
                                " WHERE username=%s",
                                (want["name"], want["quota"], want["active"], addr),
                            )
                        )
                    if not pw_ok:
                        changes.append(f"mailbox {addr}: password")
                        sql.append(
                            (
                                "UPDATE mailbox SET password=%s, modified=NOW() WHERE username=%s",
                                (new_hash, addr),
                            )
                        )
                # Postfix Admin gives every mailbox an alias to itself
                if addr not in have_alias and addr not in aliases:
                    sql.append(
                        (
                            "INSERT INTO alias (address, goto, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, NOW(), NOW(), 1)",
                            (addr, addr, want["domain"]),
                        )
                    )
            for addr, goto in aliases.items():
                row = have_alias.get(addr)
                if goto is None:
                    if row is not None:
                        changes.append(f"alias {addr}: remove")
                        sql.append(("DELETE FROM alias WHERE address=%s", (addr,)))
                    continue
                if row is None:
                    changes.append(f"alias {addr}: add")
                    sql.append(
                        (
                            "INSERT INTO alias (address, goto, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, NOW(), NOW(), 1)",
                            (addr, goto, addr.split("@", 1)[1]),
                        )
                    )
                elif (row[1], int(row[2])) != (goto, 1):
                    changes.append(f"alias {addr}: update")
                    sql.append(
                        (
                            "UPDATE alias SET goto=%s, active=1, modified=NOW() WHERE address=%s",
                            (goto, addr),
                        )
                    )
            if test or not sql:
                conn.rollback()
            else:
                for stmt, args in sql:
                    cur.execute(stmt, args)
                conn.commit()
    except pymysql.MySQLError as exc:
        conn.rollback()
        raise CommandExecutionError(f"database {database}: {exc}") from exc
    finally:
        conn.close()
    if not test:
        try:
            os.makedirs(os.path.dirname(cache_file), mode=0o700, exist_ok=True)
            with salt.utils.files.fopen(cache_file, "w") as fh:
                json.dump(pw_cache, fh)
            os.chmod(cache_file, 0o600)
        except OSError as exc:
            log.warning("cannot write %s: %s", cache_file, exc)
    return changes


def replica_status():
    """
    ``SHOW SLAVE STATUS`` of this MariaDB as a dict, or None when it is not a replica.

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster.replica_status
    """
    conn = _connect()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(str(exc)) from exc
    finally:
        conn.close()
    if not row:
        return None
    return {k: (v if isinstance(v, (int, str, type(None))) else str(v)) for k, v in row.items()}


def replica_configure(master_host, user, password, port=3306):
    """
    Point this MariaDB at ``master_host`` with GTID (``slave_pos``) and start replication.

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster.replica_configure 10.88.0.21 repl secret
    """
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute("STOP SLAVE")
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s,"
                " MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=2, MASTER_USE_GTID=slave_pos",
                (master_host, int(port), user, password),
            )
            cur.execute("START SLAVE")
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(str(exc)) from exc
    finally:
        conn.close()
    return replica_status()
