"""
The fail2ban role's facts, and the minion side of the peer ban (docs/fail2ban.md).

- :py:func:`facts`: what ``salt/fail2ban/map.jinja`` adds to the role's map under ``cluster``:
  this node's jails (those of its pillar roles, each with its settings resolved), the
  addresses fail2ban must never ban (loopback, every node's ``ip`` and ``service_ip``, the
  storage links' addresses, the master, pillar ``fail2ban:ignoreip``), the peer jail's ports
  and the log files the jails read.
- :py:func:`ban`, :py:func:`unban`, :py:func:`banned`: ``fail2ban-client`` on this node, with
  an argument list (no shell). :py:func:`ban` refuses an address this node never bans, and a
  jail it does not run: the master's reactor calls it on a peer after it verified the event
  (``_runners/mailcluster_peerban.py``), and any caller is checked again here.
"""

import contextlib
import ipaddress
import re

import salt.utils.path
from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

__virtualname__ = "mailcluster_fail2ban"

PILLAR_KEY = "mailcluster"
ROLE_KEY = "fail2ban"

#: always ignored, whatever the pillar says
LOOPBACK = ["127.0.0.1/8", "::1"]
#: the events' tag prefix (<TAG>/ban, <TAG>/unban): reactor/master.d/fail2ban.conf listens to it
TAG = "mailcluster/fail2ban"
JAIL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


def __virtual__():
    if "mailcluster.nodes_with" not in __salt__:
        return (False, "mailcluster_fail2ban needs the mailcluster module (not loaded)")
    return __virtualname__


def _networks(values):
    out = []
    for value in values:
        net = ipaddress.ip_network(str(value), strict=False)
        if net not in out:
            out.append(net)
    return out


def _text(net):
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def never_banned(settings=None, pillar=None):
    """
    The addresses and networks this cluster never bans, as text: loopback, every node's
    ``ip`` and ``service_ip``, ``storage:nodes:*:address``, the master (when the minion's
    ``master`` is an address), then pillar ``fail2ban:ignoreip``.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_fail2ban.never_banned
    """
    pl = pillar if pillar is not None else __pillar__
    if settings is None:
        settings = __salt__["mailcluster_schema.merged"](ROLE_KEY, pl)
    mc = pl.get(PILLAR_KEY) or {}
    values = list(LOOPBACK)
    for name in sorted(mc.get("nodes") or {}):
        node = mc["nodes"][name] or {}
        values += [node[k] for k in ("ip", "service_ip") if node.get(k)]
    storage = traverse_dict(pl, "storage:nodes") or {}
    values += [v["address"] for _, v in sorted(storage.items()) if (v or {}).get("address")]
    masters = __opts__.get("master")
    for master in masters if isinstance(masters, list) else [masters]:
        # a name is left out: the master's node is in mailcluster:nodes
        with contextlib.suppress(ValueError):
            values.append(str(ipaddress.ip_address(str(master))))
    values += list(settings.get("ignoreip") or [])
    return [_text(n) for n in _networks(values)]


def _jail_key(pillar, jail, field):
    """The pillar key of a jail's ``field``: under ``lookup`` if only that one sets the jail."""
    if traverse_dict(pillar, f"{ROLE_KEY}:jails:{jail}") is None and (
        traverse_dict(pillar, f"{ROLE_KEY}:lookup:jails:{jail}") is not None
    ):
        return f"{ROLE_KEY}:lookup:jails:{jail}:{field}"
    return f"{ROLE_KEY}:jails:{jail}:{field}"


def facts(mapdata, node=None, pillar=None):
    """
    The fail2ban facts of ``node`` (this minion by default) from the role's merged map
    ``mapdata``: ``jails`` (enabled, of the node's roles; ``disabled``: the others, so that
    Debian's own are turned off too), ``ignoreip``, ``peer`` (the peer jail and its ports, or
    None), ``logs`` and ``peers`` (the other nodes the bans are shared with). Raises naming the
    pillar key of a jail that misses what it needs.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_fail2ban.facts '{...the fail2ban map...}'
    """
    pl = pillar if pillar is not None else __pillar__
    mc = pl.get(PILLAR_KEY) or {}
    name = node or __grains__["id"]
    roles = set(((mc.get("nodes") or {}).get(name) or {}).get("roles") or [])
    jails, disabled = [], []
    for jail, conf in sorted((mapdata.get("jails") or {}).items()):
        conf = conf or {}
        if not conf.get("enabled", True) or not roles & set(conf.get("roles") or []):
            disabled.append(jail)
            continue
        for field in ("filter", "logpath", "ports"):
            if not conf.get(field):
                raise CommandExecutionError(
                    f"{_jail_key(pl, jail, field)}: missing (the jail runs on "
                    f"{name}: it needs filter, logpath and ports)"
                )
        jails.append(
            {
                "name": jail,
                "filter": conf["filter"],
                "logpath": conf["logpath"],
                "port": ",".join(str(p) for p in conf["ports"]),
                "bantime": int(conf.get("bantime") or mapdata["bantime"]),
                "findtime": int(conf.get("findtime") or mapdata["findtime"]),
                "maxretry": int(conf.get("maxretry") or mapdata["maxretry"]),
            }
        )
    peer_conf = mapdata.get("peer_ban") or {}
    peer = None
    if jails and peer_conf.get("enabled"):
        if peer_conf["jail"] in mapdata.get("jails", {}):
            raise CommandExecutionError(
                f"{ROLE_KEY}:peer_ban:jail: {peer_conf['jail']!r} is the name of a jail of "
                f"{ROLE_KEY}:jails (the peer bans need a jail of their own)"
            )
        ports = sorted({int(p) for j in jails for p in j["port"].split(",")})
        peer = {
            "name": peer_conf["jail"],
            "port": ",".join(str(p) for p in ports),
            "bantime": int(mapdata["bantime"]),
            "action": peer_conf["action"],
            "tag": TAG,
            "salt_call": peer_conf["salt_call"],
        }
    f2b_roles = {
        r for conf in (mapdata.get("jails") or {}).values() for r in (conf or {}).get("roles") or []
    }
    peers = sorted(
        {n for r in f2b_roles for n in __salt__["mailcluster.nodes_with"](r, pl)} - {name}
    )
    return {
        "jails": jails,
        "disabled": disabled,
        "ignoreip": never_banned(mapdata, pl),
        "peer": peer,
        "peers": peers,
        "logs": sorted({j["logpath"] for j in jails}),
    }


# --------------------------------------------------------------------------- fail2ban-client
def _client(*args):
    binary = salt.utils.path.which("fail2ban-client")
    if not binary:
        raise CommandExecutionError("fail2ban-client not found (is the fail2ban role applied?)")
    res = __salt__["cmd.run_all"]([binary, *args], python_shell=False, ignore_retcode=True)
    if res["retcode"] != 0:
        raise CommandExecutionError(
            f"fail2ban-client {' '.join(args)}: {(res['stderr'] or res['stdout']).strip()}"
        )
    return res["stdout"]


def _address(ip):
    try:
        return ipaddress.ip_address(str(ip))
    except ValueError:
        raise CommandExecutionError(f"{ip!r} is not an IP address") from None


def _own(key):
    """Pillar ``fail2ban:<key>`` over ``fail2ban:lookup:<key>``, without the role's defaults:
    the peer ban's calls stay cheap (the defaults come from the master's file server)."""
    value = traverse_dict(__pillar__, f"{ROLE_KEY}:{key}")
    return value if value is not None else traverse_dict(__pillar__, f"{ROLE_KEY}:lookup:{key}")


def _jail(jail):
    if jail is None:
        jail = _own("peer_ban:jail") or "mailcluster-peer"
    if not isinstance(jail, str) or not JAIL_RE.match(jail):
        raise CommandExecutionError(f"{jail!r} is not a jail name")
    return jail


def banned(jail=None):
    """
    The addresses ``jail`` (the peer jail by default) bans now, sorted.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_fail2ban.banned postfix-sasl
    """
    out = _client("status", _jail(jail))
    for line in out.splitlines():
        if "Banned IP list:" in line:
            return sorted(line.split(":", 1)[1].split())
    return []


def ban(ip, jail=None):
    """
    Ban ``ip`` in ``jail`` (the peer jail by default) on this node, unless the cluster never
    bans it (:py:func:`never_banned`). Returns ``{"ip", "jail", "banned": True|False,
    "comment"}``; ``banned`` False with the reason when refused.

    CLI Example:

    .. code-block:: bash

        salt mx2 mailcluster_fail2ban.ban 192.0.2.10
    """
    addr, jail = _address(ip), _jail(jail)
    for net in never_banned({"ignoreip": _own("ignoreip") or []}):
        if addr in ipaddress.ip_network(net, strict=False):
            return {
                "ip": str(addr),
                "jail": jail,
                "banned": False,
                "comment": f"{addr} is never banned here (in {net}: fail2ban ignoreip)",
            }
    # fail2ban answers the number of addresses it newly banned: 0 when it was banned already
    fresh = _client("set", jail, "banip", str(addr)).strip() != "0"
    comment = "banned" if fresh else "already banned"
    return {"ip": str(addr), "jail": jail, "banned": True, "comment": comment}


def unban(ip, jail=None):
    """
    Lift the ban of ``ip`` in ``jail`` (the peer jail by default) on this node; nothing to do
    when it is not banned there. Returns ``{"ip", "jail", "unbanned": True|False}``.

    CLI Example:

    .. code-block:: bash

        salt mx2 mailcluster_fail2ban.unban 192.0.2.10
    """
    addr, jail = _address(ip), _jail(jail)
    if str(addr) not in banned(jail):
        return {"ip": str(addr), "jail": jail, "unbanned": False}
    _client("set", jail, "unbanip", str(addr))
    return {"ip": str(addr), "jail": jail, "unbanned": True}
