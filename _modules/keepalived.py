"""
Query keepalived, the pair's other mover (pillar ``ha:mover: keepalived``, docs/keepalived.md),
with the same answers as the ``heartbeat`` module gives, so that the beacon, the grains and
the master's witnesses (``heartbeat.node_status`` / ``wait_node_status`` on the peer) work
unchanged: ``heartbeat.*`` hands over to this module on a node whose mover is keepalived
(``heartbeat.wait_node_status`` polls ``node_status``, so it needs nothing here).

Keepalived has no peer status of its own to ask: each node runs one VRRP instance per service
IP (``mc_<node>``, the owner at the higher priority), and its notify script
(``salt/ha/files/keepalived-notify``) writes each instance's state to ``STATE_DIR/<instance>``.
A peer is ``dead`` for this node when this node is MASTER of the peer's instance (its adverts
stopped and the address moved here), ``active`` while this node is BACKUP of it (the peer
advertises). This node itself is ``active`` while keepalived runs.

:depends: keepalived (its systemd unit), the notify script of the ha role
"""

import logging
import os
import re

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "keepalived"

CONF = "/etc/keepalived/keepalived.conf"
STATE_DIR = "/run/keepalived-mailcluster"
PREFIX = "mc_"


def __virtual__():
    if salt.utils.path.which("systemctl") is None:
        return (False, "keepalived: systemctl not found")
    return __virtualname__


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandExecutionError(f"cannot read {path}: {exc}") from None


def local_node():
    """
    Return this node's name (``uname -n``, as heartbeat's module does).

    CLI Example:

    .. code-block:: bash

        salt '*' keepalived.local_node
    """
    return os.uname().nodename


def status():
    """
    Return whether keepalived runs here: ``{"running": True}``.

    CLI Example:

    .. code-block:: bash

        salt '*' keepalived.status
    """
    return {"running": bool(__salt__["service.status"]("keepalived"))}


def nodes():
    """
    Return the nodes of the pair, from the VRRP instances of keepalived.conf (``mc_<node>``).
    Raises ``CommandExecutionError`` when keepalived is not running (as heartbeat's does).

    CLI Example:

    .. code-block:: bash

        salt '*' keepalived.nodes
    """
    if not status()["running"]:
        raise CommandExecutionError("keepalived is not running ('systemctl is-active keepalived')")
    text = _read(CONF) or ""
    return re.findall(rf"^\s*vrrp_instance\s+{PREFIX}(\S+)\s*{{", text, re.M)


def instance_state(node):
    """
    Return the state this node's keepalived is in for ``node``'s instance: ``MASTER``,
    ``BACKUP``, ``FAULT``, ``STOP`` or None (no transition written yet).

    CLI Example:

    .. code-block:: bash

        salt mx2 keepalived.instance_state mx1
    """
    text = _read(os.path.join(STATE_DIR, f"{PREFIX}{node}"))
    if text is None:
        return None
    return text.strip() or None


def node_status(node):
    """
    Return ``active`` or ``dead`` for ``node`` as this node's keepalived sees it (see the
    module documentation). An unknown node raises ``CommandExecutionError`` naming it.

    CLI Example:

    .. code-block:: bash

        salt mx2 keepalived.node_status mx1
    """
    known = nodes()
    if node not in known:
        raise CommandExecutionError(
            f"keepalived node '{node}' is not a cluster node (instances in {CONF}: {known})"
        )
    if node == local_node():
        return "active"
    return "dead" if instance_state(node) in ("MASTER", "FAULT") else "active"


def takeover(which="all"):
    """
    Keepalived moves addresses on its own (VRRP priorities): nothing to request. Returns True
    when keepalived runs (so the caller's check of the address follows), else raises.

    CLI Example:

    .. code-block:: bash

        salt mx2 keepalived.takeover foreign
    """
    if not status()["running"]:
        raise CommandExecutionError(f"keepalived is not running: cannot take over {which}")
    return True
