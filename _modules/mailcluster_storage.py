"""
The storage role's pillar against the topology (salt/storage, docs/storage.md), on its merged
values (defaults included): the drbd_ocfs2 pair (two nodes with role storage, their DRBD/o2cb
addresses and numbers, the nodes DRBD settings name), the fencing of the pair (the master's
arbiter, or a handler of one's own), and every address of the cluster used once.

:py:func:`errors` is what ``mailcluster.validate`` adds for the storage role.
"""

import ipaddress

__virtualname__ = "mailcluster_storage"

PILLAR_KEY = "mailcluster"

NEEDS = ("mailcluster.nodes_with", "mailcluster_schema.merged")


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_storage needs {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def errors(pillar=None, mc=None):
    """
    The storage role's errors for ``pillar`` (default: the node's; ``mc``: its
    ``mailcluster`` key), each naming the pillar key at fault; empty when it is good.
    ``mailcluster.validate`` calls it with the pillar it checks.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_storage.errors
    """
    pillar = __pillar__ if pillar is None else pillar
    mc = (pillar.get(PILLAR_KEY) or {}) if mc is None else mc
    errors = []
    storage = __salt__["mailcluster_schema.merged"]("storage", pillar)
    storage_nodes = storage.get("nodes") or {}
    members = __salt__["mailcluster.nodes_with"]("storage", {PILLAR_KEY: mc})
    if members and storage["backend"] == "drbd_ocfs2":
        if len(members) != 2:
            errors.append(
                f"{PILLAR_KEY}:nodes: storage backend drbd_ocfs2 needs exactly two nodes with "
                f"role storage, has {members}"
            )
        for name in members:
            if name not in storage_nodes:
                errors.append(
                    f"storage:nodes:{name}: missing (node {name} has role storage; drbd_ocfs2 "
                    "needs its address and number)"
                )
            elif "number" not in storage_nodes[name]:
                errors.append(f"storage:nodes:{name}:number: missing (drbd_ocfs2: o2cb's number)")
        _validate_fencing(storage["drbd"], mc, errors)
        for field in ("initial_primary", "split_brain_victim"):
            value = storage["drbd"].get(field)
            if value and value not in storage_nodes:
                errors.append(
                    f"storage:drbd:{field}: {value!r} is not one of storage:nodes "
                    f"({', '.join(sorted(storage_nodes))})"
                )
    for name in sorted(storage_nodes):
        if name not in members:
            errors.append(f"storage:nodes:{name}: not a node with role storage")
    _validate_addresses(mc, storage_nodes, errors)
    return errors


def _validate_addresses(mc, storage_nodes, errors):
    """Every address once: node IPs, then service IPs (a service IP equal to another node's IP
    is the service IP's fault), then the storage interconnect (a node's own IP is fine)."""
    used = {}

    def claim(key, value, own=()):
        addr = str(ipaddress.ip_address(value))
        if addr in used and used[addr] not in own:
            errors.append(f"{key}: {addr} is already used by {used[addr]}")
        used.setdefault(addr, key)

    nodes = mc["nodes"]
    for field in ("ip", "service_ip"):
        for name in sorted(nodes):
            if field in nodes[name]:
                claim(f"{PILLAR_KEY}:nodes:{name}:{field}", nodes[name][field])
    for name in sorted(storage_nodes):
        own = (f"{PILLAR_KEY}:nodes:{name}:ip",)
        claim(f"storage:nodes:{name}:address", storage_nodes[name]["address"], own)


def _validate_fencing(drbd, mc, errors):
    """DRBD fencing of the pair: the master's arbiter needs its handler's place, the secret
    that signs its verdicts and a master to ask; other fencing needs a handler of its own."""
    arbiter = drbd.get("arbiter") or {}
    handlers = drbd.get("handlers") or {}
    if not arbiter.get("enabled"):
        if drbd.get("fencing") != "dont-care" and "fence-peer" not in handlers:
            errors.append(
                f"storage:drbd:fencing: {drbd.get('fencing')} freezes I/O until a fence-peer "
                "handler answers: set storage:drbd:handlers:fence-peer, enable "
                "storage:drbd:arbiter, or use dont-care"
            )
        return
    if drbd.get("fencing") != "resource-and-stonith":
        errors.append(
            f"storage:drbd:fencing: {drbd.get('fencing')!r} with storage:drbd:arbiter:enabled; "
            "the arbiter's handler needs resource-and-stonith"
        )
    if "fence-peer" in handlers:
        errors.append(
            "storage:drbd:handlers:fence-peer: set while storage:drbd:arbiter:enabled, whose "
            "handler takes that place"
        )
    if not drbd.get("shared_secret"):
        errors.append(
            "storage:drbd:shared_secret: empty; storage:drbd:arbiter signs its verdicts with it"
        )
    masters = __salt__["mailcluster.nodes_with"]("master", {PILLAR_KEY: mc})
    if not arbiter.get("host") and not masters:
        errors.append(
            "storage:drbd:arbiter:host: empty and no node has role master (the arbiter runs "
            "on the master)"
        )
