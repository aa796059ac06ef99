"""
The map data of the mail cluster's roles: what each role's ``map.jinja`` renders from.

:py:func:`mapdata` stacks ``<role>/parameters/defaults.yaml``, pillar ``<role>:lookup`` and
``<role>``, and the facts this node needs from the topology (``cluster`` key: nearest DB,
peers, zones, secrets). It raises on invalid pillar (``mailcluster.check``), so a highstate
stops while rendering, before any state runs.

The pillar model comes from the ``mailcluster`` module, the zone names from
``mailcluster_dns.zones`` and the Postfix Admin setup hash from ``mailcluster_db.stable_hash``,
all called through ``__salt__``.
"""

import copy
import ipaddress

import salt.utils.dictupdate
from salt.utils.data import traverse_dict

__virtualname__ = "mailcluster_map"

PILLAR_KEY = "mailcluster"

#: what the role facts call in the other mailcluster modules
NEEDS = (
    "mailcluster.check",
    "mailcluster.nodes_with",
    "mailcluster.near_first",
    "mailcluster.dns_primary",
    "mailcluster_dns.zones",
    "mailcluster_db.stable_hash",
)


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_map needs {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def _nodes_with(role, mc):
    return __salt__["mailcluster.nodes_with"](role, {PILLAR_KEY: mc})


def _near_first(names, mc, dc):
    return __salt__["mailcluster.near_first"](names, dc, {PILLAR_KEY: mc})


def _network(mc, name):
    node = mc["nodes"][name]
    return ipaddress.ip_network(node.get("network") or mc["cluster"]["network"], strict=False)


def _fqdn(mc, name):
    return f"{name}.{mc['cluster']['domain']}"


def _db_sources(mc, name):
    """
    Every DB node, in the order a mail node should read from them: its pillar choice (or one in
    its own data centre, else the primary) first, then the others of its data centre, then the
    primary, then the rest. All of them, so that a dead DB server (the primary included) only
    costs a client the connect timeout before the next one answers.
    """
    node = mc["nodes"][name]
    primary = _nodes_with("db_primary", mc)
    db_nodes = _nodes_with("db_replica", mc) + primary
    if node.get("db"):
        first = node["db"]
    else:
        near = [n for n in db_nodes if mc["nodes"][n].get("dc") == node.get("dc")]
        first = (near or primary)[0]

    # primary before the other replicas, then the node's own data centre first, its choice first
    ordered = _near_first(sorted(db_nodes, key=lambda o: (o not in primary, o)), mc, node.get("dc"))
    ordered.remove(first)
    return [mc["nodes"][n]["ip"] for n in [first, *ordered]]


def _common_facts(mc, name):
    nodes = mc["nodes"]
    hosts = []
    for other in sorted(nodes):
        hosts.append({"ip": nodes[other]["ip"], "names": [_fqdn(mc, other), other]})
        if nodes[other].get("service_ip"):
            svc = f"{other}-svc"
            hosts.append({"ip": nodes[other]["service_ip"], "names": [_fqdn(mc, svc), svc]})
    dns_nodes = _nodes_with("dns_primary", mc) + _nodes_with("dns_secondary", mc)
    me = nodes[name]
    san_ips = [me["ip"]]
    if "ha" in me.get("roles", []):
        san_ips += [nodes[n]["service_ip"] for n in _nodes_with("ha", mc)]
    elif me.get("service_ip"):
        san_ips.append(me["service_ip"])
    san_names = [_fqdn(mc, name), name, f"mail.{mc['cluster']['domain']}"]
    secrets = mc.get("secrets") or {}
    tls = secrets.get("tls") or {}
    ca_pem = traverse_dict(tls, f"{name}:ca")
    return {
        "hosts": hosts,
        # the DNS servers of the node's own data centre first: a lost site's server then costs
        # the other site's lookups nothing (resolv.conf tries them in order, timeout:1 each)
        "nameservers": [nodes[n]["ip"] for n in _near_first(dns_nodes, mc, me.get("dc"))],
        "search": mc["cluster"]["domain"],
        "cert": {
            "cn": _fqdn(mc, name),
            "san": ", ".join([f"DNS:{n}" for n in san_names] + [f"IP:{ip}" for ip in san_ips]),
            # a real certificate and key from pillar replace the cluster-signed one
            "pem": traverse_dict(tls, f"{name}:cert"),
            "key_pem": traverse_dict(tls, f"{name}:key"),
            # the CA that signed it: the node then needs no CA minion (a masterless node);
            # only when given, so the maps of nodes without one stay as they were
            **({"ca_pem": ca_pem} if ca_pem else {}),
        },
    }


def _db_facts(mc, name):
    secrets = mc["secrets"]
    primary = _nodes_with("db_primary", mc)
    db_nodes = primary + _nodes_with("db_replica", mc)
    mail_ips = [mc["nodes"][n]["ip"] for n in _nodes_with("mail", mc)]
    replica_ips = [mc["nodes"][n]["ip"] for n in _nodes_with("db_replica", mc)]
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
        "postfixadmin_password": traverse_dict(secrets, "db:postfixadmin"),
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
    pair = _nodes_with("ha", mc)
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


def _dns_facts(mc, name):
    dns_nodes = _nodes_with("dns_primary", mc) + _nodes_with("dns_secondary", mc)
    primary = __salt__["mailcluster.dns_primary"]({PILLAR_KEY: mc})
    secondaries = sorted(n for n in dns_nodes if n != primary)
    return {
        "role": "primary" if name == primary else "secondary",
        "acting": primary is not None and primary not in _nodes_with("dns_primary", mc),
        "primary_ip": mc["nodes"][primary]["ip"] if primary else None,
        "secondary_ips": [mc["nodes"][n]["ip"] for n in secondaries],
        "zones": sorted(__salt__["mailcluster_dns.zones"](_mc=mc)),
        "tsig": {
            "algorithm": traverse_dict(mc, "secrets:tsig:algorithm") or "hmac-sha256",
            "secret": traverse_dict(mc, "secrets:tsig:secret"),
        },
    }


def _web_facts(mc, name):
    secrets = mc["secrets"]
    mail_nodes = _nodes_with("mail", mc)
    near = [n for n in mail_nodes if mc["nodes"][n].get("dc") == mc["nodes"][name].get("dc")]
    imap = (near or mail_nodes or [None])[0]
    return {
        "fqdn": _fqdn(mc, name),
        # one service IP is enough: heartbeat moves it to the peer when its node fails
        "mail_host": mc["nodes"][imap]["service_ip"] if imap else None,
        # the name Roundcube verifies: the service IP itself. Every mail node's cluster
        # certificate carries every service IP (a takeover), and no ACME certificate does, so
        # no SNI name can make dovecot or postfix present a certificate from another CA
        # (mail.<cluster zone> is on the ACME certificate since the cluster DNS layout).
        "mail_tls_name": mc["nodes"][imap]["service_ip"] if imap else None,
        "graph_hosts": [
            {"name": n, "ip": mc["nodes"][n]["ip"], "port": _graphs_port()}
            for n in _nodes_with("graphs", mc)
        ],
        "db": {
            "roundcube": secrets["db"]["roundcube"],
            "postfixadmin": secrets["db"]["postfixadmin"],
        },
        "des_key": secrets["roundcube"]["des_key"],
        "setup_password_hash": __salt__["mailcluster_db.stable_hash"](
            secrets["postfixadmin"]["setup_password"]
        ),
        "admin_password": secrets["postfixadmin"]["admin_password"],
        "admin": f"admin@{mc['cluster']['domain']}",
        # per mail domain: MTA-STS policy and client set-up (mta-sts., autoconfig., autodiscover.)
        "sites": __salt__["mailcluster_records.client_sites"](_mc=mc),
    }


def _graphs_port():
    return int(traverse_dict(__pillar__, "graphs:port") or 8081)


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

        salt '*' mailcluster_map.mapdata mail
    """
    mc = __pillar__.get(PILLAR_KEY) or {}
    # this loader's pillar goes along to every call (the loader behind __salt__ may hold
    # another one: minion_mods called with pillar=)
    __salt__["mailcluster.check"]({PILLAR_KEY: mc})
    name = node or __grains__["id"]
    data = copy.deepcopy(defaults or {})
    role_pillar = copy.deepcopy(__pillar__.get(role) or {})
    lookup = role_pillar.pop("lookup", {}) or {}
    data = salt.utils.dictupdate.merge(data, lookup, merge_lists=False)
    data = salt.utils.dictupdate.merge(data, role_pillar, merge_lists=False)
    data["role"] = role
    data["node"] = name
    if name in (mc.get("nodes") or {}) and role in _FACTS:
        # every SLS of a role imports its map: the facts (the dns role's zones, the web
        # role's sites of every domain) once per job; shared, so templates only read them
        # the facts read the failover's grains too (the acting DNS primary, withdrawn nodes)
        grains = tuple(sorted((k, repr(v)) for k, v in __grains__.items() if "mailcluster" in k))
        data["cluster"] = __salt__["mailcluster_memo.per_pillar"](
            "mailcluster_map.facts",
            __pillar__,
            lambda: _FACTS[role](mc, name),
            (role, name, grains),
        )
    return data
