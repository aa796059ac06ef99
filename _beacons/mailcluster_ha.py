"""
Beacon: heartbeat peers and DRBD connections changing state.

Fires only on transitions: the first run records what it sees and fires nothing; later
runs fire one event per heartbeat peer whose status changed (``active`` <-> ``dead``...)
and per DRBD resource whose connection state changed (``Connected`` -> ``Connecting`` /
``StandAlone`` and back, ``Unconfigured`` when the resource went down).

Tags
----
``salt/beacon/<minion id>/mailcluster_ha/<kind>/<subject>``:

- ``heartbeat/<peer>``: a heartbeat peer changed status.
- ``drbd/<resource>``: a DRBD connection changed state.
- ``split_brain/<resource>``: the connection went ``StandAlone`` and the kernel log says
  split brain (``drbd.split_brain``); sent instead of the ``drbd`` event.

Payload (arrives as ``data['data']`` in a reactor; Salt adds ``id``)::

    {"node": "mx1",          # this node (heartbeat/DRBD host name)
     "peer": "mx2",          # the peer concerned (DRBD: the other host of the resource)
     "kind": "heartbeat" | "drbd" | "split_brain",
     "old": "active",        # previous state
     "new": "dead",          # current state
     "resource": "r0"}       # drbd and split_brain only

Options
-------
.. code-block:: yaml

    beacons:
      mailcluster_ha:
        - heartbeat: true        # watch heartbeat peers (default true)
        - drbd: true             # true (all resources), false, or a list of names
        - interval: 2            # seconds between runs (Salt's own option)
        - disable_during_state_run: true   # no events while a state changes DRBD

It needs the ``heartbeat`` and/or ``drbd`` execution modules of this tree; a watcher whose
module is not loaded is skipped. Errors from the tools are logged and skip that run.
"""

import logging

import salt.utils.beacons
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_ha"

_OPTIONS = {"heartbeat", "drbd", "interval", "disable_during_state_run", "run_once"}

# last seen states, kept between runs: {("heartbeat", peer): status, ("drbd", res): cstate}
LAST = {}
# stable facts: this node's name and each resource's peer host
_FACTS = {}


def __virtual__():
    return __virtualname__


def validate(config):
    """
    Validate the beacon configuration (a list of one-key dicts).
    """
    if not isinstance(config, list):
        return False, "Configuration for mailcluster_ha beacon must be a list"
    if not all(isinstance(item, dict) for item in config):
        return False, "Configuration for mailcluster_ha beacon must be a list of dicts"
    cfg = salt.utils.beacons.list_to_dict(config)
    unknown = sorted(set(cfg) - _OPTIONS)
    if unknown:
        return False, f"mailcluster_ha beacon: unknown option(s) {', '.join(unknown)}"
    if not isinstance(cfg.get("heartbeat", True), bool):
        return False, "mailcluster_ha beacon: heartbeat must be true or false"
    drbd = cfg.get("drbd", True)
    if not isinstance(drbd, bool) and not (
        isinstance(drbd, list) and drbd and all(isinstance(x, str) and x for x in drbd)
    ):
        return False, "mailcluster_ha beacon: drbd must be true, false or a list of resources"
    if cfg.get("heartbeat", True) is False and drbd is False:
        return False, "mailcluster_ha beacon: nothing to watch (heartbeat and drbd both off)"
    return True, "Valid beacon configuration"


def _node():
    if "node" not in _FACTS:
        name = None
        if "heartbeat.local_node" in __salt__:
            try:
                name = __salt__["heartbeat.local_node"]()
            except CommandExecutionError:
                name = None
        _FACTS["node"] = name or __grains__.get("nodename") or __grains__.get("id")
    return _FACTS["node"]


def _drbd_peer(resource, reported):
    """The peer's host name: DRBD 9 reports it, DRBD 8.4 says "peer" (read the config)."""
    if reported and reported != "peer":
        return reported
    key = ("peer", resource)
    if key not in _FACTS:
        peer = reported
        try:
            hosts = __salt__["drbd.config"]().get(resource, {}).get("hosts", {})
            others = [host for host in hosts if host != _node()]
            if len(others) == 1:
                peer = others[0]
        except CommandExecutionError as exc:
            log.debug("mailcluster_ha beacon: drbd.config failed: %s", exc)
        _FACTS[key] = peer
    return _FACTS[key]


def _transition(key, new):
    old = LAST.get(key)
    LAST[key] = new
    return old if old is not None and old != new else None


def _heartbeat_events(node):
    events = []
    try:
        if not __salt__["heartbeat.status"]()["running"]:
            return events
        peers = [peer for peer in __salt__["heartbeat.nodes"]() if peer != node]
        current = {peer: __salt__["heartbeat.node_status"](peer) for peer in peers}
    except CommandExecutionError as exc:
        log.debug("mailcluster_ha beacon: heartbeat query failed: %s", exc)
        return events
    for peer, new in sorted(current.items()):
        old = _transition(("heartbeat", peer), new)
        if old is not None:
            events.append(
                {
                    "tag": f"heartbeat/{peer}",
                    "node": node,
                    "peer": peer,
                    "kind": "heartbeat",
                    "old": old,
                    "new": new,
                }
            )
    return events


def _drbd_events(node, which):
    events = []
    try:
        if which is True:
            status = __salt__["drbd.status"]()
        else:
            status = {}
            for name in which:
                status.update(__salt__["drbd.status"](name))
    except CommandExecutionError as exc:
        log.debug("mailcluster_ha beacon: drbd.status failed: %s", exc)
        return events
    for resource, entry in sorted(status.items()):
        peers = entry.get("peers") or []
        if entry.get("up") and peers:
            new, reported = peers[0]["connection"], peers[0]["name"]
        else:
            new, reported = "Unconfigured", None
        old = _transition(("drbd", resource), new)
        if old is None:
            continue
        kind = "drbd"
        if new == "StandAlone":
            try:
                if __salt__["drbd.split_brain"](resource)["split_brain"]:
                    kind = "split_brain"
            except CommandExecutionError as exc:
                log.debug("mailcluster_ha beacon: split_brain check failed: %s", exc)
        events.append(
            {
                "tag": f"{kind}/{resource}",
                "node": node,
                "peer": _drbd_peer(resource, reported),
                "kind": kind,
                "resource": resource,
                "old": old,
                "new": new,
            }
        )
    return events


def beacon(config):
    """
    Return one event per heartbeat peer or DRBD connection that changed since the last run.
    """
    cfg = salt.utils.beacons.list_to_dict(config)
    node = _node()
    events = []
    if cfg.get("heartbeat", True) and "heartbeat.status" in __salt__:
        events.extend(_heartbeat_events(node))
    drbd = cfg.get("drbd", True)
    if drbd and "drbd.status" in __salt__:
        events.extend(_drbd_events(node, drbd))
    return events
