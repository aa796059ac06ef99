"""
Keep the OCFS2 o2cb cluster configured and online, and its volume formatted once.
Thin wrappers over the ``o2cb`` execution module; each state gives its read, act and
read-back to the shared skeleton (``_states/mc_flow.py``).

.. code-block:: yaml

    storage-ocfs2-cluster-o2cb-cluster_present:
      o2cb.cluster_present:
        - name: mail
        - nodes:
            mx1: {ip: 10.88.0.11, number: 1}
            mx2: {ip: 10.88.0.12, number: 2}

    storage-ocfs2-cluster-o2cb-cluster_online:
      o2cb.cluster_online:
        - name: mail

    storage-ocfs2-volume-o2cb-formatted:
      o2cb.formatted:
        - name: /dev/drbd0
        - cluster: mail
        - label: mail
        - slots: 2
        - journal_size: 4M
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "o2cb"


def __virtual__():
    if "o2cb.list_clusters" not in __salt__:
        return (False, "the o2cb execution module is not available (ocfs2-tools missing?)")
    if "mc_flow.converge" not in __states__:
        return (False, "the o2cb states need the shared skeleton (_states/mc_flow.py not loaded)")
    return __virtualname__


def _normalize_nodes(nodes):
    """
    Accept ``{name: {"ip": ..., "port": ..., "number": ...}}``, ``{name: "ip"}`` or
    ``[{"name": ..., "ip": ...}, ...]`` and return ``{name: {"number", "ip_address",
    "ip_port"}}`` with number None where not given.
    """
    items = []
    if isinstance(nodes, dict):
        for node, spec in nodes.items():
            spec = {"ip": spec} if isinstance(spec, str) else dict(spec or {})
            items.append((str(node), spec))
    else:
        for spec in nodes or []:
            spec = dict(spec)
            items.append((str(spec.pop("name")), spec))
    out = {}
    for node, spec in items:
        ip = spec.get("ip", spec.get("ip_address"))
        if not ip:
            raise CommandExecutionError(f"o2cb node {node!r} has no ip")
        number = spec.get("number")
        out[node] = {
            "number": int(number) if number is not None else None,
            "ip_address": str(ip),
            "ip_port": int(spec.get("port", spec.get("ip_port", 7777))),
        }
    return out


def _assign_numbers(wanted, current):
    """
    Fill in missing node numbers, stably: a node already in cluster.conf keeps its number;
    the others get the lowest free numbers from 1, in node-name order (so two nodes that
    start from the same file compute the same numbers).
    """
    used = {spec["number"] for spec in wanted.values() if spec["number"] is not None}
    for node in sorted(wanted):
        spec = wanted[node]
        if spec["number"] is None and node in current:
            number = current[node]["number"]
            if number not in used:
                spec["number"] = number
                used.add(number)
    number = 1
    for node in sorted(wanted):
        spec = wanted[node]
        if spec["number"] is None:
            while number in used:
                number += 1
            spec["number"] = number
            used.add(number)
    return wanted


def _diff(name, wanted, heartbeat_mode, info):
    changes = {}
    current = info["nodes"] if info else {}
    if info is None:
        changes["cluster"] = {"old": None, "new": name}
    if (info["heartbeat_mode"] if info else "local") != heartbeat_mode:
        changes["heartbeat_mode"] = {
            "old": info["heartbeat_mode"] if info else None,
            "new": heartbeat_mode,
        }
    node_changes = {}
    for node in sorted(set(current) | set(wanted)):
        old = current.get(node)
        new = wanted.get(node)
        if old != new:
            node_changes[node] = {"old": old, "new": new}
    if node_changes:
        changes["nodes"] = node_changes
    return changes


def cluster_present(name, nodes, heartbeat_mode="local", config_file=None):
    """
    Make ``cluster.conf`` define cluster ``name`` with exactly ``nodes``, through the
    o2cb tool.

    name
        Cluster name (``O2CB_BOOTCLUSTER``).
    nodes
        ``{node: {ip: ..., port: 7777, number: N}}`` (or ``{node: ip}``, or a list of
        dicts with ``name``). Give explicit numbers; missing ones are assigned stably (kept
        from cluster.conf, else the lowest free from 1 in name order). A node whose number,
        address or port differs is removed and re-added; nodes not listed are removed.
    heartbeat_mode
        ``local`` (default) or ``global``.
    config_file
        Another cluster.conf (tests).
    """

    def plan():
        info = __salt__["o2cb.cluster_info"](name, config_file=config_file)
        current = info["nodes"] if info else {}
        wanted = _assign_numbers(_normalize_nodes(nodes), current)
        changes = _diff(name, wanted, heartbeat_mode, info)
        if not changes:
            return {"result": True, "comment": f"o2cb cluster {name} is configured as wanted"}
        return {
            "changes": changes,
            "would": f"o2cb cluster {name} would be reconfigured in cluster.conf",
            "done": f"o2cb cluster {name} reconfigured in cluster.conf",
            "wanted": wanted,
        }

    def act(step):
        changes = step["changes"]
        if "cluster" in changes:
            __salt__["o2cb.add_cluster"](name, config_file=config_file)
        node_changes = changes.get("nodes", {})
        for node, change in node_changes.items():
            if change["old"] is not None:
                __salt__["o2cb.remove_node"](name, node, config_file=config_file)
        for node, change in node_changes.items():
            new = change["new"]
            if new is not None:
                __salt__["o2cb.add_node"](
                    name,
                    node,
                    new["ip_address"],
                    port=new["ip_port"],
                    number=new["number"],
                    config_file=config_file,
                )
        if "heartbeat_mode" in changes:
            __salt__["o2cb.heartbeat_mode"](name, heartbeat_mode, config_file=config_file)

    def confirm(step):
        after = __salt__["o2cb.cluster_info"](name, config_file=config_file)
        left = _diff(name, step["wanted"], heartbeat_mode, after)
        if left:
            return f"o2cb cluster {name} still differs: {left}"
        if (
            "nodes" in step["changes"]
            and __salt__["o2cb.cluster_status"](name, config_file=config_file)["online"]
        ):
            step["done"] += (
                "; the cluster is online: restart o2cb on each node to apply node changes"
            )
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm, report_unconfirmed=True)


def cluster_online(name, config_file=None):
    """
    Make sure o2cb cluster ``name`` is registered with configfs (online). Needs the o2cb
    stack loaded (the ``o2cb`` service does it at boot).

    name
        Cluster name, defined in cluster.conf.
    """

    def online():
        return __salt__["o2cb.cluster_status"](name, config_file=config_file)["online"]

    def plan():
        if online():
            return {"result": True, "comment": f"o2cb cluster {name} is online"}
        return {
            "changes": {"online": {"old": False, "new": True}},
            "would": f"o2cb cluster {name} would be registered",
            "done": f"o2cb cluster {name} is online",
        }

    def act(_step):
        __salt__["o2cb.register_cluster"](name, config_file=config_file)

    def confirm(_step):
        if not online():
            return f"register-cluster ran but o2cb cluster {name} is still offline"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)


def formatted(
    name,
    cluster,
    label,
    slots,
    journal_size=None,
    block_size="4K",
    cluster_size="4K",
):
    """
    Make sure device ``name`` holds an OCFS2 filesystem. An existing OCFS2 volume is never
    reformatted: with another label or cluster the state fails and says so; a device that
    holds any other filesystem fails too. Apply it on ONE node only (the other sees the
    result through DRBD); two nodes formatting at once would both write.

    name
        The block device (``/dev/drbd0``).
    cluster
        o2cb cluster name written into the volume.
    label
        Volume label.
    slots
        Node slots (``-N``).
    journal_size
        Journal size for ``-J size=`` (``4M`` fits a 64 MiB test volume).
    """

    def plan():
        info = __salt__["o2cb.fs_info"](name)
        if info is None:
            new = {"type": "ocfs2", "label": label, "cluster": cluster, "slots": int(slots)}
            return {
                "changes": {"filesystem": {"old": None, "new": new}},
                "would": f"{name} would be formatted as OCFS2",
                "done": f"{name} formatted as OCFS2",
            }
        if info["type"] != "ocfs2":
            return {
                "result": False,
                "comment": (
                    f"{name} holds a {info['type']} filesystem: refusing to format it as OCFS2"
                ),
            }
        if info["label"] != label or (info["cluster"] not in (None, cluster)):
            return {
                "result": False,
                "comment": (
                    f"{name} already holds OCFS2 (label {info['label']!r}, cluster "
                    f"{info['cluster']!r}), not label {label!r} / cluster {cluster!r}; "
                    "it is never reformatted"
                ),
            }
        return {
            "result": True,
            "comment": f"{name} already holds OCFS2 (label {label!r}, cluster {cluster!r})",
        }

    def act(_step):
        __salt__["o2cb.mkfs"](
            name,
            cluster,
            label,
            slots,
            block_size=block_size,
            cluster_size=cluster_size,
            journal_size=journal_size,
        )

    def confirm(_step):
        info = __salt__["o2cb.fs_info"](name)
        if not info or info["type"] != "ocfs2" or info["label"] != label:
            return f"mkfs.ocfs2 ran but {name} shows {info}"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)
