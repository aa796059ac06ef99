"""
Heartbeat states: the daemon running with every node active, and resources held here.
Thin wrappers over the ``heartbeat`` execution module; each state gives its read, act and
read-back to the shared skeleton (``_states/mc_flow.py``).

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

__virtualname__ = "heartbeat"


def __virtual__():
    if "heartbeat.status" not in __salt__:
        return (False, "the heartbeat execution module is not available (cl_status missing?)")
    if "mc_flow.converge" not in __states__:
        return (
            False,
            "the heartbeat states need the shared skeleton (_states/mc_flow.py not loaded)",
        )
    return __virtualname__


def _not_active(nodes):
    out = {}
    for node in nodes:
        state = __salt__["heartbeat.node_status"](node)
        if state != "active":
            out[node] = state
    return out


def _states_of(waiting):
    return ", ".join(f"{node} is {state}" for node, state in waiting.items())


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
    nodes = list(nodes or [])
    listed = f"; active: {', '.join(nodes)}" if nodes else ""

    def unknown():
        known = __salt__["heartbeat.nodes"]()
        missing = [node for node in nodes if node not in known]
        if missing:
            return f"heartbeat does not know node(s) {', '.join(missing)} (has {known})"
        return None

    def plan():
        if not __salt__["heartbeat.status"]()["running"]:
            wait = f" and wait up to {timeout} s for {', '.join(nodes)}" if nodes else ""
            return {
                "changes": {"service": {"old": "stopped", "new": "running"}},
                "would": f"heartbeat would be started{wait}",
                "done": "heartbeat started" + listed,
            }
        refusal = unknown()
        if refusal:
            return {"result": False, "comment": refusal}
        waiting = _not_active(nodes)
        if not waiting:
            return {"result": True, "comment": "heartbeat is running" + listed}
        return {
            "changes": {},
            "would": f"would wait up to {timeout} s: {_states_of(waiting)}",
            "done": "heartbeat is running" + listed,
        }

    def act(step):
        if step["changes"]:
            __salt__["heartbeat.start"]()

    def confirm(_step):
        deadline = time.monotonic() + float(timeout)
        while not __salt__["heartbeat.status"]()["running"]:
            if time.monotonic() >= deadline:
                return f"heartbeat not running after {timeout} s"
            time.sleep(interval)
        refusal = unknown()
        if refusal:
            return refusal
        waiting = _not_active(nodes)
        while waiting:
            if time.monotonic() >= deadline:
                return f"after {timeout} s: {_states_of(waiting)}"
            time.sleep(interval)
            waiting = _not_active(nodes)
        return None

    return __states__["mc_flow.converge"](
        name, plan, act, confirm, report_unconfirmed=True, report_error=True
    )


def _groups(held, which):
    if which == "local":
        return sorted(node for node, entry in held.items() if entry["preferred"])
    if which == "foreign":
        return sorted(node for node, entry in held.items() if not entry["preferred"])
    return sorted(held)


def _holding(held, wanted):
    return sorted(node for node in wanted if held[node]["held"])


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

    def plan():
        if which not in ("local", "foreign", "all"):
            return {
                "result": False,
                "comment": f"which must be local, foreign or all, not {which!r}",
            }
        held = __salt__["heartbeat.held"](haresources)
        wanted = _groups(held, which)
        if not wanted:
            return {"result": False, "comment": f"haresources has no {which} group for this node"}
        before = _holding(held, wanted)
        if before == wanted:
            return {"result": True, "comment": f"this node holds the {which} resources ({wanted})"}
        return {
            "changes": {"groups": {"old": before, "new": wanted}},
            "would": f"heartbeat would be asked to take over the {which} resources",
            "done": f"took over the {which} resources",
            "wanted": wanted,
        }

    def act(_step):
        __salt__["heartbeat.takeover"](which)

    def confirm(step):
        wanted = step["wanted"]
        deadline = time.monotonic() + float(timeout)
        while True:
            after = _holding(__salt__["heartbeat.held"](haresources), wanted)
            if after == wanted:
                return None
            if time.monotonic() >= deadline:
                return (
                    f"heartbeat did not hand over the {which} resources within {timeout} s "
                    f"(held: {after})"
                )
            time.sleep(interval)

    return __states__["mc_flow.converge"](name, plan, act, confirm)
