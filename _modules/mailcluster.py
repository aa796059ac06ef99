"""
Mail cluster topology: the pillar model every other ``mailcluster*`` module builds on.

Every decision the state tree makes from the site pillar lives in these modules rather than
in Jinja. This one holds the model itself:

- :py:func:`validate` checks the whole pillar and names the offending key: first against the
  declared schemas (``mailcluster_schema``: every ``salt://<role>/parameters/schema.yaml``),
  then the relations across the topology that a schema cannot express (addresses used once,
  roles, references, the secrets each role needs); :py:func:`check` raises with those
  messages; :py:func:`top_sls` falls back to the pillar check alone on invalid pillar.
- :py:func:`node_roles`, :py:func:`nodes_with` and :py:func:`dns_primary`: who has which role.

The others call it through ``__salt__``: ``mailcluster_map`` (role maps), ``mailcluster_dns``
(zones), ``mailcluster_db`` (rows, replication). The pillar layout: ``pillar.example``.
"""

import ipaddress
import re

from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

__virtualname__ = "mailcluster"

PILLAR_KEY = "mailcluster"

#: role name in pillar -> the SLS it selects (empty: no states of its own)
ROLE_SLS = {
    # every node: the minion watchdog (a deaf minion cannot be verified or repaired through)
    # and the firewall (no node may go without one: it is not a role a node can forget)
    "common": ["common", "selfheal.watchdog", "firewall"],
    "db_primary": ["db.primary"],
    "db_replica": ["db.replica"],
    "dns_primary": ["dns.primary"],
    "dns_secondary": ["dns.secondary"],
    "storage": ["storage"],
    # fail2ban (salt/fail2ban) on every node users log in to
    "mail": ["mail", "fail2ban"],
    # the self-healing beacon watches the heartbeat pair, so it comes with the ha role
    "ha": ["ha", "selfheal"],
    "graphs": ["graphs"],
    "web": ["web", "fail2ban"],
    # the cluster CA (salt/ca): first, the other nodes' certificates wait for it
    "master": ["ca"],
    # backup sets (salt/backup): the target runs the job, store nodes and the DB primary serve it
    "backup": ["backup"],
}
SLS_ORDER = [
    "ca",
    "common",
    "selfheal.watchdog",
    "firewall",
    "acme.pebble",
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
    "fail2ban",
    "acme",
    "backup",
]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.[a-z][a-z0-9-]*[a-z0-9]$")
LOCAL_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
NODE_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

#: secrets every cluster needs, by the role that needs them
ROLE_SECRETS = {
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
    "backup": [("backup", "rsync"), ("backup", "db")],
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


# --------------------------------------------------------------------------- validation
def _validate_nodes(mc, errors):
    """Relations of the topology; the schema has checked the types already."""
    cluster, nodes = mc["cluster"], mc["nodes"]
    if not DOMAIN_RE.match(cluster["domain"]):
        errors.append(
            f"{PILLAR_KEY}:cluster:domain: not a valid domain name: {cluster['domain']!r}"
        )
    try:
        ipaddress.ip_network(cluster["network"], strict=False)
    except ValueError:
        errors.append(f"{PILLAR_KEY}:cluster:network: not a network: {cluster['network']!r}")
        return
    dcs = sorted(mc.get("datacentres") or {})
    db_nodes = [n for n, d in nodes.items() if {"db_primary", "db_replica"} & set(d["roles"])]
    for name, node in nodes.items():
        key = f"{PILLAR_KEY}:nodes:{name}"
        if not NODE_RE.match(str(name)):
            errors.append(f"{key}: not a valid node name (lower-case letters, digits, -)")
        try:
            net = ipaddress.ip_network(node.get("network") or cluster["network"], strict=False)
        except ValueError:
            errors.append(f"{key}:network: not a network: {node.get('network')!r}")
            continue
        for field in ("ip", "service_ip"):
            if field in node:
                _check_address(f"{key}:{field}", ipaddress.ip_address(node[field]), net, errors)
        roles = node["roles"]
        for role in roles:
            if role not in ROLE_SLS:
                errors.append(
                    f"{key}:roles: unknown role {role!r} (known: {', '.join(sorted(ROLE_SLS))})"
                )
        for role in ("mail", "ha"):
            if role in roles and "service_ip" not in node:
                errors.append(f"{key}:service_ip: missing (required by role {role})")
        if "mail" in roles and "storage" not in roles:
            errors.append(f"{key}:roles: role mail needs role storage on the same node")
        for one, other in (("db_primary", "db_replica"), ("dns_primary", "dns_secondary")):
            if one in roles and other in roles:
                errors.append(f"{key}:roles: roles {one} and {other} exclude each other")
        if "dc" in node and node["dc"] not in dcs:
            known = ", ".join(dcs) or "none declared under mailcluster:datacentres"
            errors.append(f"{key}:dc: unknown data centre {node['dc']!r} (known: {known})")
        if "db" in node and node["db"] not in nodes:
            errors.append(f"{key}:db: unknown node {node['db']!r}")
        elif "db" in node and node["db"] not in db_nodes:
            errors.append(f"{key}:db: {node['db']!r} is not a DB node (db_primary or db_replica)")
    _validate_role_counts(mc, errors)


def _check_address(key, addr, net, errors):
    if addr not in net:
        errors.append(f"{key}: {addr} is outside the node's network {net}")
    elif net.num_addresses > 2 and addr in (net.network_address, net.broadcast_address):
        errors.append(f"{key}: {addr} is the network or broadcast address of {net}")


def _validate_role_counts(mc, errors):
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
    ids = {}
    for name in with_role["db_primary"] + with_role["db_replica"]:
        sid = mc["nodes"][name].get("db_server_id")
        if sid is not None and sid in ids:
            errors.append(
                f"{PILLAR_KEY}:nodes:{name}:db_server_id: {sid} is already used by {ids[sid]}"
            )
        ids.setdefault(sid, name)


def _validate_role_params(pillar, mc, errors):
    """Role parameters against the topology, on their merged values (defaults included)."""
    errors.extend(__salt__["mailcluster_storage.errors"](pillar, mc))
    mail = nodes_with("mail", {PILLAR_KEY: mc})
    for name in traverse_dict(pillar, "dns:withdrawn") or []:
        if name not in mail:
            errors.append(f"dns:withdrawn: {name!r} is not a node with role mail ({mail})")
    zone = traverse_dict(pillar, "dns:cluster_zone")
    if zone and zone in (mc.get("domains") or {}):
        errors.append(f"dns:cluster_zone: {zone!r} is a mail domain (mailcluster:domains)")
    rr_name = traverse_dict(pillar, "dns:rr_name") or "mail"
    if rr_name in (mc.get("nodes") or {}) and traverse_dict(pillar, "dns:layout") != "per_domain":
        errors.append(
            f"dns:rr_name: {rr_name!r} is a node's name (its A record in the cluster zone)"
        )
    keeper = traverse_dict(mc, "selfheal:partition_keeper")
    if isinstance(keeper, str) and keeper not in nodes_with("ha", {PILLAR_KEY: mc}):
        errors.append(
            f"{PILLAR_KEY}:selfheal:partition_keeper: {keeper!r} is not a node with role ha"
        )
    for name in sorted(traverse_dict(mc, "secrets:tls") or {}):
        if name not in mc["nodes"]:
            errors.append(f"{PILLAR_KEY}:secrets:tls:{name}: not a node of mailcluster:nodes")


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
        if dom == (mc.get("cluster") or {}).get("domain"):
            errors.append(f"{key}: is mailcluster:cluster:domain, whose zone holds the node names")
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
        value = traverse_dict(secrets, ":".join(path))
        if value in (None, ""):
            errors.append(f"{PILLAR_KEY}:secrets:{':'.join(path)}: missing secret")


def _schema_missing():
    reason = (getattr(__salt__, "missing_modules", None) or {}).get("mailcluster_schema")
    if reason and "jsonschema" in str(reason):
        return str(reason)
    return (
        f"module mailcluster_schema not loaded ({reason or 'not synced?'}); it needs the Python "
        "package jsonschema where salt-minion runs (apt install python3-jsonschema, or "
        "salt-pip install jsonschema), then saltutil.sync_modules"
    )


def validate(pillar=None):
    """
    Check the pillar (the ``mailcluster`` key, every role's key, ``mailcluster:selfheal``)
    and return the list of problems, each starting with the pillar key it concerns (empty
    list: the pillar is valid). The declared schemas come first; the relations between keys
    are checked once the types are right.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.validate
    """
    pillar = __pillar__ if pillar is None else pillar
    # once per job for every role's map (issue 14.2); none in the failover runner's loader
    memo = __salt__.get("mailcluster_memo.per_pillar")
    return list(memo("validate", pillar, lambda: _validate(pillar)) if memo else _validate(pillar))


def _validate(pillar):
    mc = _cluster(pillar)
    if not mc:
        return [f"{PILLAR_KEY}: missing (no cluster topology in pillar)"]
    if "mailcluster_schema.validate" not in __salt__:
        return [f"{PILLAR_KEY}: cannot check the pillar: {_schema_missing()}"]
    types = __salt__["mailcluster_schema.validate"](pillar, relations=False)
    errors = __salt__["mailcluster_schema.validate"](pillar)
    # the topology's relations read these keys: only once their types are right
    if not any(_concerns(e, key) for e in types for key in (PILLAR_KEY, "storage", "dns")):
        _validate_nodes(mc, errors)
        _validate_domains(mc, errors)
        _validate_secrets(mc, errors)
        _validate_role_params(pillar, mc, errors)
    return errors


def _concerns(error, key):
    """Whether ``error`` is about pillar ``key`` (``mailcluster:selfheal`` aside: own schema)."""
    path = error.split(": ")[0].split(":")
    return path[0] == key and path[:2] != [PILLAR_KEY, "selfheal"]


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
    # the ACME certificates (salt/acme) with pillar acme:server on the nodes that serve TLS to
    # users, and the lab's test CA with acme:pebble:enabled on the master (as in top.sls)
    acme = __pillar__.get("acme") or {}
    if str(acme.get("server") or "").startswith("https://") and wanted & {"mail", "web"}:
        wanted.add("acme")
    if (acme.get("pebble") or {}).get("enabled") is True and "ca" in wanted:
        wanted.add("acme.pebble")
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


def near_first(names, dc, pillar=None):
    """
    ``names`` (node ids) with the ones in data centre ``dc`` first, the order otherwise kept:
    what every "nearest first" list of the cluster is made by (DB sources, resolvers, backup
    sources), so a lost site costs the other site's clients nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster.near_first '[ns1, ns2]' dc2
    """
    nodes = _cluster(pillar).get("nodes") or {}
    return sorted(names, key=lambda n: (nodes.get(n) or {}).get("dc") != dc)


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
