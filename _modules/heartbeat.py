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
"""

import logging
import os
import re
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
_AUTH_METHODS = ("crc", "sha1", "md5")
_IP_RESOURCES = ("IPaddr", "IPaddr2")


def __virtual__():
    if salt.utils.path.which("cl_status") is None:
        return (False, "cl_status not found: install heartbeat")
    return __virtualname__


# ---------------------------------------------------------------------------
# Pure parsers
# ---------------------------------------------------------------------------


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _parse_hbstatus(text, retcode):
    """``Heartbeat is running on this machine.`` (rc 0) / ``... stopped ...`` (rc 1)."""
    return retcode == 0 and "is running" in text


def _parse_nodestatus(text):
    """``active`` (rc 0), ``dead`` (rc 1), ``up``, ``init``... or None for an error text."""
    lines = _lines(text)
    if lines and re.fullmatch(r"[a-z]+", lines[0]):
        return lines[0]
    return None


def _logical_lines(text):
    """Config lines without comments, with backslash continuations joined."""
    out = []
    pending = ""
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append(line)
    if pending.strip():
        out.append(pending.strip())
    return out


def _parse_ha_cf(text):
    """Parse ha.cf into ``{"nodes": [...], "directives": {name: [values, ...]}}``."""
    directives = {}
    nodes = []
    for line in _logical_lines(text):
        words = line.split()
        key, values = words[0], words[1:]
        directives.setdefault(key, []).append(" ".join(values))
        if key == "node":
            nodes.extend(values)
    return {"nodes": nodes, "directives": directives}


def _resource_ips(spec):
    """IPv4 addresses a haresources entry brings up (``IPaddr2::10.0.0.1/24/eth0``)."""
    name, _, args = spec.partition("::")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/.*)?", name):
        return [name.split("/")[0]]
    if name in _IP_RESOURCES and args:
        return [args.split("::")[0].split("/")[0]]
    return []


def _parse_haresources(text):
    """
    Parse haresources into a list of groups::

        [{"node": "mx1", "resources": ["IPaddr2::10.88.0.100/24/eth0"],
          "ips": ["10.88.0.100"]}]
    """
    groups = []
    for line in _logical_lines(text):
        words = line.split()
        resources = words[1:]
        ips = [ip for spec in resources for ip in _resource_ips(spec)]
        groups.append({"node": words[0], "resources": resources, "ips": ips})
    return groups


def _parse_authkeys(text):
    """Parse authkeys into ``{"auth": "1", "keys": {"1": ("sha1", "secret")}}``."""
    out = {"auth": None, "keys": {}}
    for line in _logical_lines(text):
        words = line.split()
        if words[0] == "auth" and len(words) > 1:
            out["auth"] = words[1]
        elif words[0].isdigit() and len(words) > 1:
            out["keys"][words[0]] = (words[1], " ".join(words[2:]))
    return out


def _parse_ip_addrs(text):
    """Addresses from ``ip -o addr show``: ``{"10.88.0.100": "eth0", ...}``."""
    out = {}
    for line in (text or "").splitlines():
        match = re.match(r"\d+:\s+(\S+)\s+inet6?\s+([0-9a-fA-F.:]+)/\d+", line)
        if match:
            out[match.group(2)] = match.group(1).split("@")[0]
    return out


def _time_ms(value):
    """heartbeat time values: ``200ms``, ``2``, ``2s``, ``1.5`` -> milliseconds."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|us)?", value)
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2) or "s"
    return int(number * {"ms": 1, "s": 1000, "us": 0.001}[unit])


def _check(ha_cf_text, haresources_text, authkeys_text, authkeys_mode, local_node):
    """Pure validation of the three files; returns a list of error strings."""
    errors = []
    if ha_cf_text is None:
        errors.append("ha.cf is missing")
        cf = {"nodes": [], "directives": {}}
    else:
        cf = _parse_ha_cf(ha_cf_text)
        if len(cf["nodes"]) < 2:
            errors.append(f"ha.cf lists {len(cf['nodes'])} node(s); a cluster needs 2")
        if local_node and local_node not in cf["nodes"]:
            errors.append(f"ha.cf does not list this node ({local_node}) as a node")
        media = [key for key in ("ucast", "bcast", "mcast", "serial") if key in cf["directives"]]
        if not media:
            errors.append("ha.cf has no communication medium (ucast, bcast, mcast or serial)")
        crm = cf["directives"].get("crm", ["no"])[-1].lower()
        if crm not in ("no", "off", "false"):
            errors.append(f"ha.cf sets 'crm {crm}': haresources is ignored unless crm is off")
        times = {}
        for key in ("keepalive", "warntime", "deadtime", "initdead"):
            if key in cf["directives"]:
                times[key] = _time_ms(cf["directives"][key][-1])
                if times[key] is None:
                    errors.append(f"ha.cf: cannot read {key} {cf['directives'][key][-1]!r}")
        deadtime = times.get("deadtime")
        for key in ("keepalive", "warntime"):
            if times.get(key) and deadtime and times[key] >= deadtime:
                errors.append(f"ha.cf: {key} must be shorter than deadtime")
    if haresources_text is None:
        errors.append("haresources is missing")
    else:
        for group in _parse_haresources(haresources_text):
            if cf["nodes"] and group["node"] not in cf["nodes"]:
                errors.append(f"haresources: node {group['node']!r} is not a node in ha.cf")
            if not group["resources"]:
                errors.append(f"haresources: node {group['node']!r} has no resources")
    if authkeys_text is None:
        errors.append("authkeys is missing")
    else:
        if authkeys_mode is not None and authkeys_mode & 0o777 != 0o600:
            errors.append(f"authkeys has mode {authkeys_mode & 0o777:o}; heartbeat requires 600")
        keys = _parse_authkeys(authkeys_text)
        if keys["auth"] is None:
            errors.append("authkeys has no 'auth N' line")
        elif keys["auth"] not in keys["keys"]:
            errors.append(f"authkeys: 'auth {keys['auth']}' names no key line")
        else:
            method, secret = keys["keys"][keys["auth"]]
            if method not in _AUTH_METHODS:
                errors.append(f"authkeys: unknown method {method!r}")
            elif method != "crc" and not secret:
                errors.append(f"authkeys: method {method} needs a secret")
    return errors


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
    res = _run(["cl_status", "hbstatus"], ok_retcodes=(0, 1))
    return {"running": _parse_hbstatus(res["stdout"] + res["stderr"], res["retcode"])}


def nodes():
    """
    Return the node names heartbeat knows (``cl_status listnodes``), ping nodes included.
    Raises ``CommandExecutionError`` when heartbeat is not running.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.nodes
    """
    return _lines(_run(["cl_status", "listnodes"])["stdout"])


def node_status(node):
    """
    Return the status heartbeat reports for ``node``: ``active``, ``dead``, ``up`` or
    ``init``. An unknown node raises ``CommandExecutionError`` naming it.

    CLI Example:

    .. code-block:: bash

        salt '*' heartbeat.node_status mx2
    """
    cmd = ["cl_status", "nodestatus", node]
    res = __salt__["cmd.run_all"](
        cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug"
    )
    text = f"{res.get('stdout', '')}\n{res.get('stderr', '')}"
    found = _parse_nodestatus(text)
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
    lines = _lines(_run(["cl_status", "rscstatus"])["stdout"])
    return lines[0] if lines else None


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
    return _parse_haresources(text)


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
    addrs = _parse_ip_addrs(_run(["ip", "-o", "addr", "show"])["stdout"])
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
    errors = _check(
        ha_cf_text,
        _read(haresources),
        _read(authkeys),
        mode,
        node if node is not None else local_node(),
    )
    cf_nodes = _parse_ha_cf(ha_cf_text)["nodes"] if ha_cf_text is not None else []
    return {"valid": not errors, "errors": errors, "nodes": cf_nodes}
