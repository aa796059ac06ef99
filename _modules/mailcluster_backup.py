"""
The backup role's topology facts: what a node with role ``backup`` does and whom it talks to.

One node, ``backup:target:node``, keeps the sets and runs the job (pull model): it dumps the
databases over the network from a replica (the primary when no replica has caught up) and
pulls the shared Maildir store from a store node's rsync daemon (read-only module). The
target's own rsync daemon serves the sets read-only to the nodes that restore (the DB primary
and the store nodes). See docs/backup.md for the why.

:py:func:`facts` is what ``salt/backup/map.jinja`` adds to the role's map under ``cluster``.
"""

import json

from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

__virtualname__ = "mailcluster_backup"

PILLAR_KEY = "mailcluster"

NEEDS = ("mailcluster.nodes_with", "mailcluster.near_first")


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_backup needs {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def _with(role, mc):
    return __salt__["mailcluster.nodes_with"](role, {PILLAR_KEY: mc})


def _near_first(names, mc, dc):
    return __salt__["mailcluster.near_first"](names, dc, {PILLAR_KEY: mc})


def facts(target_node, node=None, pillar=None):
    """
    The backup facts of ``node`` (this minion by default) for the job kept on
    ``target_node``: the parts this node carries (``job``, ``store``, ``db``), the target's
    address, the store nodes to pull from and the DB servers to dump from (nearest to the
    target first), the addresses allowed to read the sets, and the secrets. Raises naming
    the pillar key when the target is not a node with role ``backup``.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_backup.facts salt
    """
    pl = pillar if pillar is not None else __pillar__
    mc = pl.get(PILLAR_KEY) or {}
    nodes = mc.get("nodes") or {}
    name = node or __grains__["id"]
    backup_nodes = _with("backup", mc)
    if target_node not in backup_nodes:
        raise CommandExecutionError(
            f"backup:target:node: {target_node!r} is not a node with role backup "
            f"(nodes with it: {', '.join(backup_nodes) or 'none'})"
        )
    target = nodes[target_node]
    store = _near_first(
        [n for n in _with("storage", mc) if n in backup_nodes], mc, target.get("dc")
    )
    primary = _with("db_primary", mc)
    replicas = _near_first(_with("db_replica", mc), mc, target.get("dc"))
    me = nodes.get(name) or {}
    roles = me.get("roles") or []
    parts = []
    if name == target_node:
        parts.append("job")
    if "storage" in roles and name in store:
        parts.append("store")
    if "db_primary" in roles:
        parts.append("db")
    secrets = traverse_dict(mc, "secrets:backup") or {}
    return {
        "parts": parts,
        "ip": me.get("ip"),
        "target": {"node": target_node, "ip": target["ip"]},
        "store_nodes": [{"name": n, "ip": nodes[n]["ip"]} for n in store],
        "db_primary": [{"name": n, "ip": nodes[n]["ip"]} for n in primary],
        "db_replicas": [{"name": n, "ip": nodes[n]["ip"]} for n in replicas],
        # who may read the sets: the nodes that restore (DB primary, store nodes)
        "readers": sorted({nodes[n]["ip"] for n in primary + store}),
        "rsync_secret": secrets.get("rsync"),
        "db_password": secrets.get("db"),
    }


def tool_config(mapdata):
    """
    The settings file of ``mailcluster-backup`` (``config.json``) from the backup map: no
    secret in it (those go to ``my.cnf`` and ``rsync.secret``). Returns the JSON text.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_backup.tool_config '{...the backup map...}'
    """
    c = mapdata["cluster"]
    conf = {
        "node": mapdata["node"],
        "target": dict(c["target"], directory=mapdata["target"]["directory"]),
        "store_nodes": c["store_nodes"],
        "db_primary": c["db_primary"],
        "db_replicas": c["db_replicas"],
        "include": mapdata["include"],
        "retention": mapdata["retention"],
        "db": {k: v for k, v in mapdata["db"].items() if k != "user"},
        "rsync": mapdata["rsync"],
        "store_path": mapdata["store_path"],
        "store_mount": bool(mapdata["restore_requires_mount"]),
    }
    return json.dumps(conf, indent=1, sort_keys=True) + "\n"
