"""
Parse and check what Linux-HA heartbeat 3 says and reads: ``cl_status`` answers, ``ip -o
addr show``, and the ``ha.cf``, ``haresources`` and ``authkeys`` files.

Pure functions over text (no command runs here, no file is read): the ``heartbeat``
execution module runs the tools, reads the files and hands the text to these through
``__salt__`` (``heartbeat_parse.nodestatus`` and so on); the unit tests feed them the real
outputs of heartbeat 3.0.6 recorded under ``tests/fixtures/heartbeat/``. Needs nothing, so
it loads everywhere.
"""

import re

__virtualname__ = "heartbeat_parse"

_AUTH_METHODS = ("crc", "sha1", "md5")
_IP_RESOURCES = ("IPaddr", "IPaddr2")


def __virtual__():
    return __virtualname__


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def hbstatus(text, retcode):
    """
    Parse ``cl_status hbstatus`` (its output and return code): True for ``Heartbeat is
    running on this machine.`` (rc 0), False for ``... stopped ...`` (rc 1).

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.hbstatus "$(cl_status hbstatus)" 0
    """
    return retcode == 0 and "is running" in text


def nodestatus(text):
    """
    Parse ``cl_status nodestatus NODE``: ``active`` (rc 0), ``dead`` (rc 1), ``up``,
    ``init``... or None for an error text.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.nodestatus "$(cl_status nodestatus mx2)"
    """
    lines = _lines(text)
    if lines and re.fullmatch(r"[a-z]+", lines[0]):
        return lines[0]
    return None


def listnodes(text):
    """
    Parse ``cl_status listnodes``: the node names, ping nodes included.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.listnodes "$(cl_status listnodes)"
    """
    return _lines(text)


def rscstatus(text):
    """
    Parse ``cl_status rscstatus``: ``local``, ``foreign``, ``all``, ``none`` or
    ``transition`` (None for no output).

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.rscstatus "$(cl_status rscstatus)"
    """
    lines = _lines(text)
    return lines[0] if lines else None


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


def ha_cf(text):
    """
    Parse ha.cf into ``{"nodes": [...], "directives": {name: [values, ...]}}``.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.ha_cf "$(cat /etc/ha.d/ha.cf)"
    """
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


def haresources(text):
    """
    Parse haresources into a list of groups::

        [{"node": "mx1", "resources": ["IPaddr2::10.88.0.100/24/eth0"],
          "ips": ["10.88.0.100"]}]

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.haresources "$(cat /etc/ha.d/haresources)"
    """
    groups = []
    for line in _logical_lines(text):
        words = line.split()
        resources = words[1:]
        ips = [ip for spec in resources for ip in _resource_ips(spec)]
        groups.append({"node": words[0], "resources": resources, "ips": ips})
    return groups


def authkeys(text):
    """
    Parse authkeys into ``{"auth": "1", "keys": {"1": ("sha1", "secret")}}``.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.authkeys "$(cat /etc/ha.d/authkeys)"
    """
    out = {"auth": None, "keys": {}}
    for line in _logical_lines(text):
        words = line.split()
        if words[0] == "auth" and len(words) > 1:
            out["auth"] = words[1]
        elif words[0].isdigit() and len(words) > 1:
            out["keys"][words[0]] = (words[1], " ".join(words[2:]))
    return out


def ip_addrs(text):
    """
    Parse ``ip -o addr show`` into ``{address: interface}``: ``{"10.88.0.100": "eth0"}``.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.ip_addrs "$(ip -o addr show)"
    """
    out = {}
    for line in (text or "").splitlines():
        match = re.match(r"\d+:\s+(\S+)\s+inet6?\s+([0-9a-fA-F.:]+)/\d+", line)
        if match:
            out[match.group(2)] = match.group(1).split("@")[0]
    return out


def time_ms(value):
    """
    Read a heartbeat time value: ``200ms``, ``2``, ``2s``, ``1.5`` -> milliseconds (None
    when it is no time).

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.time_ms 200ms
    """
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|us)?", value)
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2) or "s"
    return int(number * {"ms": 1, "s": 1000, "us": 0.001}[unit])


def config_errors(ha_cf_text, haresources_text, authkeys_text, authkeys_mode, local_node):
    """
    Check the texts of ha.cf, haresources and authkeys (None: the file is missing), the
    mode of authkeys and this node's name; returns the list of errors (empty: valid).
    ``heartbeat.check_config`` reads the files and hands them here.

    CLI Example:

    .. code-block:: bash

        salt-call heartbeat_parse.config_errors "$(cat /etc/ha.d/ha.cf)" \\
            "$(cat /etc/ha.d/haresources)" "$(cat /etc/ha.d/authkeys)" 384 mx1
    """
    errors = []
    if ha_cf_text is None:
        errors.append("ha.cf is missing")
        cf = {"nodes": [], "directives": {}}
    else:
        cf = ha_cf(ha_cf_text)
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
                times[key] = time_ms(cf["directives"][key][-1])
                if times[key] is None:
                    errors.append(f"ha.cf: cannot read {key} {cf['directives'][key][-1]!r}")
        deadtime = times.get("deadtime")
        for key in ("keepalive", "warntime"):
            if times.get(key) and deadtime and times[key] >= deadtime:
                errors.append(f"ha.cf: {key} must be shorter than deadtime")
    if haresources_text is None:
        errors.append("haresources is missing")
    else:
        for group in haresources(haresources_text):
            if cf["nodes"] and group["node"] not in cf["nodes"]:
                errors.append(f"haresources: node {group['node']!r} is not a node in ha.cf")
            if not group["resources"]:
                errors.append(f"haresources: node {group['node']!r} has no resources")
    if authkeys_text is None:
        errors.append("authkeys is missing")
    else:
        if authkeys_mode is not None and authkeys_mode & 0o777 != 0o600:
            errors.append(f"authkeys has mode {authkeys_mode & 0o777:o}; heartbeat requires 600")
        keys = authkeys(authkeys_text)
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
