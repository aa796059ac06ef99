"""
Query and steer Linux-HA heartbeat 3 (haresources mode, ``crm no``).

Salt 3008 ships no module for it. Live state comes from ``cl_status``; takeover and
standby go through heartbeat's own ``hb_takeover``/``hb_standby``; the configuration is read
from ``/etc/ha.d``.

:depends: heartbeat (``cl_status``, ``/usr/share/heartbeat/hb_takeover``)

Which node holds a resource: with an active/active ``haresources`` (one IP group per
node) ``cl_status rscstatus`` answers ``local`` on both nodes, so it cannot tell who holds
what. :py:func:`held` answers from the addresses actually configured on this node
(``ip -o addr show``), per ``haresources`` group.

What the tools print and the configuration files are parsed and checked by
``_modules/heartbeat_parse.py``, which this module reaches through ``__salt__``.
"""

import logging
import os
import stat
import time

import salt.utils.files
import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "heartbeat"

HA_DIR = "/etc/ha.d"
HB_SHARE = "/usr/share/heartbeat"
_WHICH = ("all", "local", "foreign", "failback")


def __virtual__():
    if salt.utils.path.which("cl_status") is None:
        return (False, "cl_status not found: install heartbeat")
    if "heartbeat_parse.nodestatus" not in __salt__:
        return (False, "heartbeat needs heartbeat_parse (module not loaded)")
    return __virtualname__


def _keepalived():
    """True when pillar ``ha:mover`` is keepalived (docs/keepalived.md): the pair's queries
    then answer from keepalived (``_modules/keepalived.py``), so that the beacon and the
    master's witnesses, which ask this module, work unchanged with either mover."""
    ha = __pillar__.get("ha") or {}
    mover = ha.get("mover") or (ha.get("lookup") or {}).get("mover")
    return mover == "keepalived" and "keepalived.status" in __salt__


# ---------------------------------------------------------------------------
# Command helpers
# ---------------------------------------------------------------------------


def _run(cmd, ok_retcodes=(0,)):
    res = __salt__["cmd.run_all"](
        cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug"
    )
    if res["retcode"] not in ok_retcodes:
        message = (res.get("stderr") or res.get("stdout") or "").strip()
        raise CommandExecutionError(f"'{' '.join(cmd)}' failed (rc={res['retcode']}): {message}")
    return res


def _read(path):
    if not os.path.exists(path):
        return None
    with salt.utils.files.fopen(path, "r") as handle:
        return handle.read()


def _tool(name):
    path = os.path.join(HB_SHARE, name)
    return path if os.path.exists(path) else (salt.utils.path.which(name) or path)


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def local_node():
    """
    Return this node's heartbeat name (``uname -n``, as heartbeat itself uses).

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.local_node
    """
    return _run(["uname", "-n"])["stdout"].strip()


def status():
    """
    Return whether the heartbeat daemon runs here: ``{"running": True}``.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.status
    """
    if _keepalived():
        return __salt__["keepalived.status"]()
    res = _run(["cl_status", "hbstatus"], ok_retcodes=(0, 1))
    return {
        "running": __salt__["heartbeat_parse.hbstatus"](
            res["stdout"] + res["stderr"], res["retcode"]
        )
    }


def nodes():
    """
    Return the node names heartbeat knows (``cl_status listnodes``), ping nodes included.
    Raises ``CommandExecutionError`` when heartbeat is not running.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.nodes
    """
    if _keepalived():
        return __salt__["keepalived.nodes"]()
    return __salt__["heartbeat_parse.listnodes"](_run(["cl_status", "listnodes"])["stdout"])


def node_status(node):
    """
    Return the status heartbeat reports for ``node``: ``active``, ``dead``, ``up`` or
    ``init``. An unknown node raises ``CommandExecutionError`` naming it.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.node_status mx2
    """
    if _keepalived():
        return __salt__["keepalived.node_status"](node)
    cmd = ["cl_status", "nodestatus", node]
    res = __salt__["cmd.run_all"](
        cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug"
    )
    text = f"{res.get('stdout', '')}\n{res.get('stderr', '')}"
    found = __salt__["heartbeat_parse.nodestatus"](text)
    if found:
        return found
    if "incorrect node name" in text:
        raise CommandExecutionError(
            f"heartbeat node '{node}' is not a cluster node ('{' '.join(cmd)}': {text.strip()})"
        )
    raise CommandExecutionError(f"'{' '.join(cmd)}' failed (rc={res['retcode']}): {text.strip()}")


def wait_node_status(node, status="dead", timeout=4.0, interval=0.05):
    """
    Poll heartbeat here until it reports ``node`` as ``status`` or ``timeout`` seconds have
    passed; return the last status seen. One job for the master's loss verification: polling
    ``node_status`` from the master costs a minion job process per look, on the node that is
    taking over the lost peer's IP at that very moment.

    CLI Example:

    .. code-block:: bash

        salt mx2 heartbeat.wait_node_status mx1 status=dead timeout=4
    """
    try:
        timeout, interval = float(timeout), float(interval)
    except (TypeError, ValueError) as exc:
        raise CommandExecutionError(f"timeout and interval must be numbers: {exc}") from None
    deadline = time.monotonic() + timeout
    while True:
        seen = node_status(node)
        if seen == status or time.monotonic() >= deadline:
            return seen
        time.sleep(max(0.01, interval))


def nodes_status():
    """
    Return ``{node: status}`` for every node heartbeat knows.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.nodes_status
    """
    return {node: node_status(node) for node in nodes()}


def resource_status():
    """
    Return what heartbeat says this node holds: ``local``, ``foreign``, ``all`` or
    ``none`` (``transition`` while moving). See the module note: with active/active
    haresources use :py:func:`held`.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.resource_status
    """
    return __salt__["heartbeat_parse.rscstatus"](_run(["cl_status", "rscstatus"])["stdout"])


def haresources(path=f"{HA_DIR}/haresources"):
    """
    Return the groups of ``haresources``::

        [{"node": "mx1", "resources": ["IPaddr2::10.88.0.100/24/eth0"],
          "ips": ["10.88.0.100"]}]

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.haresources
    """
    text = _read(path)
    if text is None:
        raise CommandExecutionError(f"{path} does not exist")
    return __salt__["heartbeat_parse.haresources"](text)


def held(path=f"{HA_DIR}/haresources"):
    """
    Return, per haresources group (keyed by its preferred node), whether this node holds
    its IP addresses now::

        {"mx1": {"ips": {"10.88.0.100": True}, "held": True, "preferred": True},
         "mx2": {"ips": {"10.88.0.101": False}, "held": False, "preferred": False}}

    ``preferred`` is True for the group whose home is this node.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.held
    """
    groups = haresources(path)
    addrs = __salt__["heartbeat_parse.ip_addrs"](_run(["ip", "-o", "addr", "show"])["stdout"])
    me = local_node()
    out = {}
    for group in groups:
        ips = {ip: ip in addrs for ip in group["ips"]}
        out[group["node"]] = {
            "ips": ips,
            "held": bool(ips) and all(ips.values()),
            "preferred": group["node"] == me,
        }
    return out


def _select(groups_held, which):
    if which == "local":
        return {node: entry for node, entry in groups_held.items() if entry["preferred"]}
    if which == "foreign":
        return {node: entry for node, entry in groups_held.items() if not entry["preferred"]}
    return dict(groups_held)


def holds(which="all", path=f"{HA_DIR}/haresources"):
    """
    Return True when this node holds every IP of the selected groups (``local``: its own
    groups, ``foreign``: the peers', ``all``: every group).

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.holds foreign
    """
    if which not in ("all", "local", "foreign"):
        raise CommandExecutionError(f"which must be all, local or foreign, not {which!r}")
    selected = _select(held(path), which)
    return bool(selected) and all(entry["held"] for entry in selected.values())


def _request(tool, which):
    """Hand ``which`` resources over with ``tool`` (hb_takeover/hb_standby); True once sent."""
    if which not in _WHICH:
        raise CommandExecutionError(f"which must be one of {', '.join(_WHICH)}, not {which!r}")
    _run([_tool(tool), which])
    return True


def takeover(which="all"):
    """
    Ask heartbeat to move resources to this node (``hb_takeover all|local|foreign|
    failback``). Returns True once heartbeat accepted the request (it acts asynchronously:
    poll :py:func:`held`).

    CLI Example:

    .. code-block:: bash

        salt 'mx1' heartbeat.takeover foreign
    """
    if _keepalived():
        return __salt__["keepalived.takeover"](which)
    return _request("hb_takeover", which)


def standby(which="all"):
    """
    Give resources away to the peer (``hb_standby all|local|foreign|failback``). Returns
    True once heartbeat accepted the request.

    CLI Example:

    .. code-block:: bash

        salt 'mx1' heartbeat.standby foreign
    """
    return _request("hb_standby", which)


def start():
    """
    Start the heartbeat daemon (``service heartbeat start``).

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.start
    """
    _run(["service", "heartbeat", "start"])
    return True


def check_config(
    ha_cf=f"{HA_DIR}/ha.cf",
    haresources=f"{HA_DIR}/haresources",
    authkeys=f"{HA_DIR}/authkeys",
    node=None,
):
    """
    Check ha.cf, haresources and authkeys without touching the daemon.

    Checks: two or more ``node`` entries including this one (``node``, default
    ``uname -n``), a communication medium, ``crm`` off, keepalive and warntime shorter than
    deadtime, haresources groups naming ha.cf nodes, authkeys mode 600 with an ``auth N``
    line naming a crc/sha1/md5 key (with a secret for sha1/md5). Returns::

        {"valid": True, "errors": [], "nodes": ["mx1", "mx2"]}

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.check_config
    """
    ha_cf_text = _read(ha_cf)
    mode = os.stat(authkeys).st_mode if os.path.exists(authkeys) else None
    if mode is not None:
        mode = stat.S_IMODE(mode)
    errors = __salt__["heartbeat_parse.config_errors"](
        ha_cf_text,
        _read(haresources),
        _read(authkeys),
        mode,
        node if node is not None else local_node(),
    )
    cf_nodes = (
        __salt__["heartbeat_parse.ha_cf"](ha_cf_text)["nodes"] if ha_cf_text is not None else []
    )
    return {"valid": not errors, "errors": errors, "nodes": cf_nodes}
