"""
The firewall role's ruleset: which ports this node opens, and to whom.

:py:func:`ruleset` reads the role -> ports table of ``salt/firewall/parameters/defaults.yaml``
(the firewall map, ``roles``), keeps the entries of this node's pillar roles
(``mailcluster:nodes:<node>:roles``, never the host name), resolves each entry's port (other
roles' pillar keys such as ``ha:udpport``) and source (world, ``firewall:admin_networks``, the
cluster's addresses, the nodes of some roles) and returns the nft sets and rules the template
``salt/firewall/files/mailcluster.nft.jinja`` writes. The roles come from the ``mailcluster``
module, through ``__salt__``.
"""

import ipaddress

import salt.utils.yaml
from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

__virtualname__ = "mailcluster_firewall"

PILLAR_KEY = "mailcluster"
PROTOS = {"tcp": ["tcp"], "udp": ["udp"], "both": ["tcp", "udp"], "vrrp": ["vrrp"]}
#: sources that are not role names
SPECIAL = ("world", "admin", "cluster")
NEEDS = ("mailcluster.node_roles", "mailcluster.nodes_with")


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_firewall needs {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def _nodes():
    return (__pillar__.get(PILLAR_KEY) or {}).get("nodes") or {}


def _node_addresses(names):
    nodes = _nodes()
    out = []
    for name in names:
        node = nodes.get(name) or {}
        out += [node[k] for k in ("ip", "service_ip") if node.get(k)]
    return out


def _role_setting(key, default):
    """``<role>:<rest>`` from pillar, then ``<role>:lookup:<rest>``, then ``default``: the order
    in which a role's own map (``mailcluster_map.mapdata``) lets pillar override it."""
    role, _, rest = key.partition(":")
    for path in (key, f"{role}:lookup:{rest}"):
        value = traverse_dict(__pillar__, path, None)
        if value is not None:
            return value, path
    return default, None


def _port(entry, where):
    value, path = (
        _role_setting(entry["pillar_key"], entry["port"])
        if entry.get("pillar_key")
        else (entry.get("port"), None)
    )
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535 or isinstance(value, bool):
        raise CommandExecutionError(
            f"{path or where}: port must be an integer 1-65535, got {value!r}"
        )
    return port


def _storage_peers(names):
    storage_nodes, _ = _role_setting("storage:nodes", {})
    extra = [
        (storage_nodes.get(n) or {}).get("address")
        for n in names
        if isinstance(storage_nodes, dict)
    ]
    return [a for a in extra if a]


def _source(src, mapdata, where):
    """Addresses for a source name (None: anywhere)."""
    if src == "world":
        return None
    if src == "admin":
        return list(mapdata.get("admin_networks") or [])
    if src == "cluster":
        return _node_addresses(sorted(_nodes()))
    roles = [src] if isinstance(src, str) else list(src)
    if not roles or any(not isinstance(r, str) or r in SPECIAL for r in roles):
        raise CommandExecutionError(
            f"{where}:from: one of {', '.join(SPECIAL)}, a role, or a list of roles; got {src!r}"
        )
    names = sorted({n for r in roles for n in __salt__["mailcluster.nodes_with"](r)})
    addrs = _node_addresses(names)
    if "storage" in roles:
        addrs += _storage_peers(names)
    return addrs


def _networks(addrs, where):
    """``{4: [...], 6: [...]}``, collapsed (nft refuses overlapping interval elements)."""
    nets = {4: [], 6: []}
    for addr in addrs:
        try:
            net = ipaddress.ip_network(str(addr), strict=False)
        except ValueError as exc:
            raise CommandExecutionError(f"{where}: not an address or network: {addr!r}") from exc
        nets[net.version].append(net)
    out = {}
    for version, items in nets.items():
        collapsed = list(ipaddress.collapse_addresses(items))
        if collapsed:
            out[version] = [
                str(n.network_address) if n.num_addresses == 1 else str(n) for n in collapsed
            ]
    return out


def _source_name(src):
    return src if isinstance(src, str) else "_".join(src)


def _entries(mapdata, roles):
    """The table's entries for ``roles`` plus the extra ports, with where each comes from."""
    table = mapdata.get("roles") or {}
    for role in roles:
        for i, entry in enumerate(table.get(role) or []):
            # `when`: a pillar key (read like pillar_key) that must be true for the entry
            if entry.get("when") and _role_setting(entry["when"], False)[0] is not True:
                continue
            yield f"firewall:lookup:roles:{role}:{i}", entry
    extra = mapdata.get("extra_ports") or {}
    for kind in ("world", "cluster"):
        for i, entry in enumerate(extra.get(kind) or []):
            yield (
                f"firewall:extra_ports:{kind}:{i}",
                {"service": f"extra-{kind}", **entry, "from": kind},
            )


def _map(mapdata):
    """The firewall map the SLS passes, or (from the CLI) the one it would pass."""
    if mapdata is not None:
        return mapdata
    text = __salt__["cp.get_file_str"]("salt://firewall/parameters/defaults.yaml")
    if not text:
        raise CommandExecutionError("salt://firewall/parameters/defaults.yaml: not found")
    return __salt__["mailcluster_map.mapdata"]("firewall", salt.utils.yaml.safe_load(text))


def open_ports(mapdata=None, node=None):
    """
    What this node opens: one dict per table entry of its roles (and each extra port) with
    ``service``, ``protos``, ``port``, ``from`` and ``addresses`` (None: anywhere; an empty
    list: nobody, the entry is left out of the ruleset).

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_firewall.open_ports
    """
    mapdata = _map(mapdata)
    roles = __salt__["mailcluster.node_roles"](node)
    out = []
    for where, entry in _entries(mapdata, roles):
        proto = entry.get("proto", "tcp")
        if proto not in PROTOS:
            raise CommandExecutionError(f"{where}:proto: tcp, udp, both or vrrp; got {proto!r}")
        src = entry.get("from", "cluster")
        addrs = _source(src, mapdata, where)
        at = "firewall:admin_networks" if src == "admin" else f"{where}:from"
        nets = None if addrs is None else _networks(addrs, at)
        if nets and all(_everywhere(nets, v) for v in (4, 6)):
            nets = None  # both families from anywhere: one rule, no address match
        out.append(
            {
                "service": entry.get("service", "?"),
                "protos": PROTOS[proto],
                "port": _port(entry, f"{where}:port"),
                "from": _source_name(src),
                "addresses": nets,
            }
        )
    return out


def _everywhere(nets, version):
    return any(n in ("0.0.0.0/0", "::/0") for n in nets.get(version, []))


def ruleset(mapdata=None, node=None):
    """
    The nft sets and rules of this node's input chain (table ``inet <mapdata.table>``): one
    rule per source, address family and protocol, ports sorted; sources with no address left
    out. ``sets``: ``[{name, type, elements}]``; ``rules``: nft rule strings.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_firewall.ruleset
    """
    mapdata = _map(mapdata)
    groups = {}
    sets = {}
    for item in open_ports(mapdata, node):
        families = (
            {0: None} if item["addresses"] is None else dict(sorted(item["addresses"].items()))
        )
        for version, nets in families.items():
            match = ""
            if version and not _everywhere(item["addresses"], version):
                name = f"{item['from']}_v{version}"
                sets[name] = {
                    "name": name,
                    "type": "ipv4_addr" if version == 4 else "ipv6_addr",
                    "elements": nets,
                }
                match = f"{'ip' if version == 4 else 'ip6'} saddr @{name} "
            elif version:
                match = f"meta nfproto {'ipv4' if version == 4 else 'ipv6'} "
            for proto in item["protos"]:
                group = groups.setdefault((item["from"], match, proto), {})
                group.setdefault(item["port"], []).append(item["service"])
    rules = []
    for (src, match, proto), ports in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        services = sorted({s for names in ports.values() for s in names})
        port_list = ", ".join(str(p) for p in sorted(ports))
        comment = f"{src}: {', '.join(services)}"[:120]
        # VRRP (keepalived, IP protocol 112) has no ports: the protocol itself is opened
        what = "meta l4proto vrrp" if proto == "vrrp" else f"{proto} dport {{ {port_list} }}"
        rules.append(f'{match}{what} accept comment "{comment}"')
    return {
        "table": mapdata.get("table", "mailcluster"),
        "sets": list(sets.values()),
        "rules": rules,
    }
