"""
Heartbeat states: the daemon running with every node active, and resources held here.
Thin wrappers over the ``heartbeat`` execution module.

``running`` belongs in highstate (it starts the daemon, never the resources it owns);
``resources_held`` moves resources and belongs in orchestration (``salt/orch/``).

.. code-block:: yaml

    ha-heartbeat-service-heartbeat-running:
      heartbeat.running:
        - name: heartbeat
        - nodes: [mx1, mx2]
        - timeout: 60
"""

import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "heartbeat"


def __virtual__():
    if "heartbeat.status" in __salt__:
        return __virtualname__
    return (False, "the heartbeat execution module is not available (cl_status missing?)")


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _not_active(nodes):
    out = {}
    for node in nodes:
        state = __salt__["heartbeat.node_status"](node)
        if state != "active":
            out[node] = state
    return out


def running(name="heartbeat", nodes=None, timeout=60, interval=1):
    """
    Make sure the heartbeat daemon runs here and every node in ``nodes`` is active.

    The daemon is started when it is down (that is the only change); then the state
    waits up to ``timeout`` seconds (initdead included) for the nodes. A node that stays
    dead fails the state; a node unknown to heartbeat fails it at once.

    name
        A label (the service is ``heartbeat``).
    nodes
        Node names that must be active (default: none besides the daemon).
    timeout
        Seconds to wait for the daemon and the nodes.
    """
    ret = _ret(name)
    nodes = list(nodes or [])
    changes = {}
    try:
        is_running = __salt__["heartbeat.status"]()["running"]
        if not is_running:
            changes = {"service": {"old": "stopped", "new": "running"}}
            if __opts__["test"]:
                wait = f" and wait up to {timeout} s for {', '.join(nodes)}" if nodes else ""
                ret.update(
                    result=None, comment=f"heartbeat would be started{wait}", changes=changes
                )
                return ret
            __salt__["heartbeat.start"]()
        deadline = time.monotonic() + float(timeout)
        while not __salt__["heartbeat.status"]()["running"]:
            if time.monotonic() >= deadline:
                ret.update(changes=changes, comment=f"heartbeat not running after {timeout} s")
                return ret
            time.sleep(interval)
        known = __salt__["heartbeat.nodes"]()
        unknown = [node for node in nodes if node not in known]
        if unknown:
            ret.update(
                changes=changes,
                comment=f"heartbeat does not know node(s) {', '.join(unknown)} (has {known})",
            )
            return ret
        waiting = _not_active(nodes)
        if waiting and __opts__["test"]:
            states = ", ".join(f"{node} is {state}" for node, state in waiting.items())
            ret.update(result=None, comment=f"would wait up to {timeout} s: {states}")
            return ret
        while waiting:
            if time.monotonic() >= deadline:
                states = ", ".join(f"{node} is {state}" for node, state in waiting.items())
                ret.update(changes=changes, comment=f"after {timeout} s: {states}")
                return ret
            time.sleep(interval)
            waiting = _not_active(nodes)
    except CommandExecutionError as exc:
        ret.update(changes=changes, comment=str(exc))
        return ret
    listed = f"; active: {', '.join(nodes)}" if nodes else ""
    comment = ("heartbeat started" if changes else "heartbeat is running") + listed
    ret.update(result=True, changes=changes, comment=comment)
    return ret


def _groups(held, which):
    if which == "local":
        return sorted(node for node, entry in held.items() if entry["preferred"])
    if which == "foreign":
        return sorted(node for node, entry in held.items() if not entry["preferred"])
    return sorted(held)


def resources_held(
    name, which="all", timeout=30, haresources="/etc/ha.d/haresources", interval=0.5
):
    """
    Make sure this node holds the selected haresources groups (their IP addresses are
    configured here), asking heartbeat for a takeover when they are not.

    Who holds a group is read from the addresses on this node, not from ``cl_status
    rscstatus`` (which says ``local`` on both nodes of an active/active pair).

    name
        A label for the state.
    which
        ``local`` (this node's own groups), ``foreign`` (the peer's) or ``all``.
    timeout
        Seconds to wait for heartbeat to complete the takeover.

    ``changes``: ``{"groups": {"old": [groups held before], "new": [groups held after]}}``
    (groups are named by their home node in haresources).
    """
    ret = _ret(name)
    if which not in ("local", "foreign", "all"):
        ret["comment"] = f"which must be local, foreign or all, not {which!r}"
        return ret
    try:
        held = __salt__["heartbeat.held"](haresources)
        wanted = _groups(held, which)
        before = sorted(node for node in wanted if held[node]["held"])
        if not wanted:
            ret["comment"] = f"haresources has no {which} group for this node"
            return ret
        if before == wanted:
            ret.update(result=True, comment=f"this node holds the {which} resources ({wanted})")
            return ret
        changes = {"groups": {"old": before, "new": wanted}}
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"heartbeat would be asked to take over the {which} resources",
                changes=changes,
            )
            return ret
        __salt__["heartbeat.takeover"](which)
        deadline = time.monotonic() + float(timeout)
        while True:
            held = __salt__["heartbeat.held"](haresources)
            after = sorted(node for node in wanted if held[node]["held"])
            if after == wanted:
                break
            if time.monotonic() >= deadline:
                ret["comment"] = (
                    f"heartbeat did not hand over the {which} resources within {timeout} s "
                    f"(held: {after})"
                )
                return ret
            time.sleep(interval)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, changes=changes, comment=f"took over the {which} resources")
    return ret
