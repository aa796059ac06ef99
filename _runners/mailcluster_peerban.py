# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
The fail2ban role's peer ban, on the master (docs/fail2ban.md).

A node's fail2ban bans an address in one of its jails; the jail's event action fires
``mailcluster/fail2ban/ban`` (``.../unban`` when the ban ends) through ``salt-call
event.send`` with ``jail`` and ``ip``. reactor/fail2ban_peer.sls hands the event to
:py:func:`handle`, which

1. verifies it, since any accepted minion can fire any event: the sender (``data['id']``,
   set by the master from the minion's authenticated request) is a node of
   ``mailcluster:nodes`` with a role of the fail2ban jails; the jail is one the sender runs;
   the address is an IP address that is not loopback, link-local, multicast or unspecified
   and not one the cluster never bans (every node's ``ip`` and ``service_ip``, the storage
   links, pillar ``fail2ban:ignoreip``);
2. bans (or lets go) the address in the peer jail (``fail2ban:peer_ban:jail``) of every other
   node with a fail2ban role, side by side (``mailcluster_fail2ban.ban``/``unban``, which check
   the address once more against the node's own ignore list);
3. fires ``mailcluster/fail2ban/peer/<action>`` with the origin, address, jail, each node's
   answer and the seconds taken, or ``mailcluster/fail2ban/refused`` with the reason (the
   reactor listens to the two exact tags ban and unban only: no report comes back here).

The peer jail has no event action: a ban made for a peer is not sent on again.
"""

import copy
import ipaddress
import logging
import os
import time

import salt.utils.dictupdate
import salt.utils.event
import salt.utils.files
import salt.utils.minions
import salt.utils.yaml

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_peerban"

ROLE_KEY = "fail2ban"
#: the events' tag prefix (the event action's, salt/fail2ban/files/mailcluster-event.conf.jinja)
TAG = "mailcluster/fail2ban"
DEFAULTS = ("fail2ban/parameters/defaults.yaml", "salt/fail2ban/parameters/defaults.yaml")
#: seconds one node may take to answer the ban
CALL_TIMEOUT = 15.0


def __virtual__():
    if "mcheal_ctx.compile_pillar" not in __salt__:
        return (False, "mailcluster_peerban needs the mcheal_ctx runner module")
    return __virtualname__


def _defaults():
    for root in __salt__["mcheal_ctx.file_roots"]():
        for rel in DEFAULTS:
            path = os.path.join(root, rel)
            if os.path.isfile(path):
                with salt.utils.files.fopen(path, "r") as fh:
                    return salt.utils.yaml.safe_load(fh) or {}
    return {}


def settings(pillar):
    """The fail2ban role's settings as its nodes see them: defaults.yaml, then pillar
    ``fail2ban:lookup``, then ``fail2ban``.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_peerban.settings '{}'
    """
    data = copy.deepcopy(_defaults())
    own = copy.deepcopy((pillar or {}).get(ROLE_KEY) or {})
    lookup = own.pop("lookup", None) or {}
    for layer in (lookup, own):
        data = salt.utils.dictupdate.merge(data, layer, merge_lists=False)
    return data


def _protected(pillar, conf):
    mc = pillar.get("mailcluster") or {}
    values = []
    for node in (mc.get("nodes") or {}).values():
        values += [(node or {}).get(k) for k in ("ip", "service_ip")]
    storage = ((pillar.get("storage") or {}).get("nodes")) or {}
    values += [(v or {}).get("address") for v in storage.values()]
    values += list(conf.get("ignoreip") or [])
    return [ipaddress.ip_network(str(v), strict=False) for v in values if v]


def _fail2ban_nodes(mc, jails):
    roles = {r for j in jails.values() for r in (j or {}).get("roles") or []}
    nodes = mc.get("nodes") or {}
    return sorted(n for n, d in nodes.items() if roles & set((d or {}).get("roles") or []))


def verify(tag, data, pillar):
    """
    Check a fail2ban event: returns ``(plan, None)`` with the action, origin, jail, address
    and the peers to ban on, or ``(None, reason)``.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_peerban.verify mailcluster/fail2ban/ban '{id: mx1, data: {}}' '{}'
    """
    conf = settings(pillar)
    peer_conf = conf.get("peer_ban") or {}
    action = {f"{TAG}/ban": "ban", f"{TAG}/unban": "unban"}.get(tag)
    if action is None:
        return None, f"tag {tag!r} is neither {TAG}/ban nor {TAG}/unban"
    if not peer_conf.get("enabled"):
        return None, "fail2ban:peer_ban:enabled is false"
    mc = pillar.get("mailcluster") or {}
    origin = (data or {}).get("id")
    payload = (data or {}).get("data")
    payload = payload if isinstance(payload, dict) else {}
    jails = conf.get("jails") or {}
    node = (mc.get("nodes") or {}).get(origin) if isinstance(origin, str) else None
    if node is None:
        return None, f"sender {origin!r} is not a node of mailcluster:nodes"
    roles = set((node or {}).get("roles") or [])
    jail = payload.get("jail")
    jail_conf = jails.get(jail) if isinstance(jail, str) else None
    if not jail_conf or not jail_conf.get("enabled", True):
        return None, f"jail {jail!r} is not a jail of fail2ban:jails"
    if not roles & set(jail_conf.get("roles") or []):
        return None, f"{origin} does not run jail {jail} (roles {sorted(roles)})"
    try:
        addr = ipaddress.ip_address(str(payload.get("ip")))
    except ValueError:
        return None, f"{payload.get('ip')!r} is not an IP address"
    if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified:
        return None, f"{addr} is a loopback, link-local, multicast or unspecified address"
    for net in _protected(pillar, conf):
        if addr in net:
            return None, f"{addr} is a cluster address or in fail2ban:ignoreip ({net})"
    peers = [n for n in _fail2ban_nodes(mc, jails) if n != origin]
    return {
        "action": action,
        "origin": origin,
        "jail": jail,
        "ip": str(addr),
        "peer_jail": peer_conf.get("jail"),
        "peers": peers,
    }, None


def _pillar(origin):
    """The pillar the master last compiled for the sender (its minion data cache: what its
    fail2ban was configured from), else the master minion's, compiled now (slower: 1-10 s on
    the lab's two cores, where several bans arrive together)."""
    if isinstance(origin, str) and "/" not in origin:
        try:
            _, _, cached = salt.utils.minions.get_minion_data(origin, __opts__)
        except Exception:  # pylint: disable=broad-except
            cached = None
        if isinstance(cached, dict) and cached.get("mailcluster"):
            return cached
    return __salt__["mcheal_ctx.compile_pillar"]()


def _fire(tag, payload):
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as ev:
        ev.fire_event(payload, tag)


def handle(tag, data):
    """
    The reactor's entry point (reactor/fail2ban_peer.sls): verify a fail2ban event, then ban
    (or let go) the address on the other nodes. Returns the report it fires.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_peerban.handle mailcluster/fail2ban/ban \\
            '{id: mx1, data: {jail: postfix-sasl, ip: 192.0.2.10}}'
    """
    t0 = time.monotonic()
    pillar = _pillar((data or {}).get("id"))
    plan, reason = verify(tag, data, pillar)
    verified = round(time.monotonic() - t0, 3)
    if plan is None:
        report = {"tag": tag, "origin": (data or {}).get("id"), "reason": reason}
        log.warning("fail2ban peer ban refused: %s (event %s)", reason, tag)
        _fire(f"{TAG}/refused", report)
        return report
    fun = f"mailcluster_fail2ban.{plan['action']}"
    answers = {}

    def one(node):
        def run():
            answered, ret, ok = __salt__["mcheal_ctx.call"](
                node, fun, arg=[plan["ip"]], kwarg={"jail": plan["peer_jail"]}, timeout=CALL_TIMEOUT
            )
            answers[node] = ret if answered and ok else {"error": ret or "no answer"}

        return run

    __salt__["mcheal_ctx.parallel"](*[one(n) for n in plan["peers"]])
    report = dict(plan, results=answers, verified=verified, seconds=round(time.monotonic() - t0, 3))
    log.info(
        "fail2ban peer %s of %s from %s in %.2f s: %s",
        plan["action"],
        plan["ip"],
        plan["origin"],
        report["seconds"],
        answers,
    )
    _fire(f"{TAG}/peer/{plan['action']}", report)
    return report
