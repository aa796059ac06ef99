"""
Parse what ``drbdadm``, ``drbdsetup``, ``/proc/drbd`` and the kernel log say about DRBD.

Pure functions over text (no command runs here): the ``drbd`` execution module runs the
tools and hands their output to these through ``__salt__`` (``drbd_parse.status`` and so
on); the unit tests feed them the real outputs recorded under ``tests/fixtures/``. One parser
covers DRBD 8.4 (through drbd-utils 9's ``drbdsetup-84``) and DRBD 9, since only the text
forms both understand are read. Needs nothing, so it loads everywhere: a recorded output can
be parsed on any minion (``salt-call drbd_parse.status "$(cat status.txt)"``).

Status shape
------------
``drbd.status`` returns, and :py:func:`status` parses, one entry per resource:

.. code-block:: python

    {"r0": {"role": "Primary",            # local role; "Unconfigured" when down
            "suspended": False,
            "up": True,                   # False when the resource is down
            "volumes": [{"volume": 0, "minor": 0, "disk": "UpToDate"}],
            "peers": [{"name": "peer",    # DRBD 8.4 names every peer "peer"
                       "connection": "Connected",
                       "role": "Primary",
                       "volumes": [{"volume": 0,
                                    "replication": "Established",
                                    "peer_disk": "UpToDate",
                                    "done": None}]}]}}

``done`` is the resync percentage (float) while syncing, else ``None``. A peer that is
gone has connection ``Connecting`` or ``StandAlone``, role ``Unknown`` and peer_disk
``DUnknown``. A resource that is configured but down is absent from the text;
``drbd.status`` reports it as :py:func:`down_entry`: ``up: False``, role ``Unconfigured``
and empty ``volumes``/``peers``.
"""

import re

__virtualname__ = "drbd_parse"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DOWN_MARKERS = ("No such resource", "Device minor not allocated", "unknown minor")


def __virtual__():
    return __virtualname__


def strip_ansi(text):
    """
    Return ``text`` without ANSI colour codes (drbd-utils 9 colours its output).

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.strip_ansi "$(drbdadm status r0)"
    """
    return _ANSI.sub("", text or "")


def _kv(tokens):
    """Split ``key:value`` tokens into a dict, ignoring anything else."""
    out = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        if sep:
            out[key] = value
    return out


def _to_int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def status(text):
    """
    Parse ``drbdsetup status [--verbose --statistics]`` / ``drbdadm status`` text.

    Handles DRBD 8.4 (through drbdsetup-84) and DRBD 9 layouts, several volumes and
    peers, and ANSI colours. Returns ``{name: {...}}`` in the shape of the module
    documentation; a resource that is down is not in the text, so not in the result.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.status "$(drbdsetup status r0 --verbose --statistics)"
    """
    resources = {}
    res = None
    section = None  # "resource", "device" or "peer": what the last indent-2 line opened
    for raw in strip_ansi(text).splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        tokens = raw.split()
        if indent == 0:
            if ":" in tokens[0] or len(tokens) < 2 or not tokens[1].startswith("role:"):
                # "r0: No such resource", "Command '...' terminated ..." and the like
                res = None
                continue
            kv = _kv(tokens[1:])
            res = {
                "role": kv.get("role", "Unknown"),
                "suspended": kv.get("suspended", "no") != "no",
                "up": True,
                "volumes": [],
                "peers": [],
            }
            resources[tokens[0]] = res
            section = "resource"
            continue
        if res is None:
            continue
        if indent == 2:
            if ":" in tokens[0]:
                kv = _kv(tokens)
                res["volumes"].append(
                    {
                        "volume": _to_int(kv.get("volume"), 0),
                        "minor": _to_int(kv.get("minor")),
                        "disk": kv.get("disk", "DUnknown"),
                    }
                )
                section = "device"
            else:
                kv = _kv(tokens[1:])
                res["peers"].append(
                    {
                        "name": tokens[0],
                        "connection": kv.get("connection", "Connected"),
                        "role": kv.get("role", "Unknown"),
                        "volumes": [],
                    }
                )
                section = "peer"
            continue
        if indent == 4 and section == "peer" and "replication" in raw:
            kv = _kv(tokens)
            done = kv.get("done")
            res["peers"][-1]["volumes"].append(
                {
                    "volume": _to_int(kv.get("volume"), 0),
                    "replication": kv.get("replication", "Off"),
                    "peer_disk": kv.get("peer-disk", "DUnknown"),
                    "done": float(done) if done is not None else None,
                }
            )
        # deeper lines are statistics or resource details: not part of the shape
    for res in resources.values():
        local_volumes = [vol["volume"] for vol in res["volumes"]] or [0]
        for peer in res["peers"]:
            if not peer["volumes"]:
                peer["volumes"] = [
                    {"volume": vol, "replication": "Off", "peer_disk": "DUnknown", "done": None}
                    for vol in local_volumes
                ]
    return resources


def down_entry():
    """
    Return the entry of a configured resource that is down (role ``Unconfigured``).

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.down_entry
    """
    return {"role": "Unconfigured", "suspended": False, "up": False, "volumes": [], "peers": []}


def is_down(text):
    """
    Return True when a failed ``drbdsetup``/``drbdadm`` call's output says the resource
    (or its minor) is not up, rather than that something went wrong.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.is_down "r0: No such resource"
    """
    return any(marker in text for marker in _DOWN_MARKERS)


def dump(text):
    """
    Parse ``drbdadm dump [all]`` into ``{name: {"file": ..., "hosts": {...}, "options": {...}}}``.

    ``hosts`` maps each ``on HOST`` section to its ``device``, ``minor``, ``disk``,
    ``meta_disk``, ``address`` and ``node_id``; ``options`` holds the ``net``/``disk``/
    ``options`` sections as ``{section: {key: value}}``.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.dump "$(drbdadm dump all)"
    """
    resources = {}
    res = None
    stack = []
    defined_at = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("# defined at"):
            defined_at = stripped.split("defined at", 1)[1].strip().rsplit(":", 1)[0]
            continue
        line = stripped.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            words = line[:-1].split()
            if words and words[0] == "resource" and len(words) > 1:
                name = words[1].strip('"')
                res = {"file": defined_at, "hosts": {}, "options": {}}
                resources[name] = res
                defined_at = None
                stack = ["resource"]
            elif res is not None:
                if words and words[0] == "on" and len(words) > 1:
                    host = {}
                    for hostname in words[1:]:
                        res["hosts"][hostname.strip('"')] = host
                    stack.append(("on", host))
                elif words and words[0] == "volume":
                    stack.append(("volume", None))
                else:
                    section = words[0] if words else ""
                    res["options"].setdefault(section, {})
                    stack.append(("section", section))
            continue
        if line.startswith("}"):
            if stack:
                stack.pop()
            if not stack:
                res = None
            continue
        if res is None or not stack:
            continue
        words = line.rstrip(";").split()
        if not words:
            continue
        top = stack[-1]
        if isinstance(top, tuple) and top[0] == "on":
            host = top[1]
            key, vals = words[0], words[1:]
            if key == "device":
                host["device"] = vals[0] if vals else None
                if "minor" in vals:
                    host["minor"] = _to_int(vals[vals.index("minor") + 1])
            elif key == "disk":
                host["disk"] = vals[0] if vals else None
            elif key == "meta-disk":
                host["meta_disk"] = " ".join(vals)
            elif key == "address":
                host["address"] = vals[-1] if vals else None
            elif key == "node-id":
                host["node_id"] = _to_int(vals[0]) if vals else None
        elif isinstance(top, tuple) and top[0] == "section":
            res["options"][top[1]][words[0]] = " ".join(words[1:])
    return resources


def role_pair(text):
    """
    Parse ``drbdadm role``/``dstate`` output: ``Primary/Secondary`` -> ``{"local":
    "Primary", "peer": "Secondary"}`` (``peer`` None when the tool gives one word).

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.role_pair Primary/Secondary
    """
    line = strip_ansi(text).strip().splitlines()
    value = line[0].strip() if line else ""
    local, _, peer = value.partition("/")
    return {"local": local or None, "peer": peer or None}


def version(text):
    """
    Parse ``drbdadm --version``.

    Returns ``{"utils": "9.22.0", "kernel": "8.4.11" or None, "api": 1}``; ``kernel``
    is None when the DRBD kernel module is not loaded.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.version "$(drbdadm --version)"
    """
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    kernel = None
    code = values.get("DRBD_KERNEL_VERSION_CODE")
    if code:
        number = int(code, 16)
        if number:
            kernel = f"{number >> 16}.{(number >> 8) & 0xFF}.{number & 0xFF}"
    if kernel is None and values.get("DRBD_KERNEL_VERSION", "0") not in ("", "0"):
        kernel = values["DRBD_KERNEL_VERSION"]
    return {
        "utils": values.get("DRBDADM_VERSION"),
        "kernel": kernel,
        "api": _to_int(values.get("DRBDADM_API_VERSION")),
    }


def proc_drbd(text):
    """
    Parse ``/proc/drbd``: ``{"version": "8.4.11", "minors": {0: {...}}}``.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.proc_drbd "$(cat /proc/drbd)"
    """
    out = {"version": None, "minors": {}}
    for line in text.splitlines():
        match = re.match(r"version:\s*(\S+)", line)
        if match:
            out["version"] = match.group(1)
            continue
        match = re.match(r"\s*(\d+):\s+cs:(\S+)\s+ro:(\S+)\s+ds:(\S+)", line)
        if match:
            local_role, _, peer_role = match.group(3).partition("/")
            local_disk, _, peer_disk = match.group(4).partition("/")
            out["minors"][int(match.group(1))] = {
                "cstate": match.group(2),
                "role": local_role,
                "peer_role": peer_role or None,
                "disk": local_disk,
                "peer_disk": peer_disk or None,
            }
    return out


def events2(text):
    """
    Parse ``drbdsetup events2 --now`` into ``{name: {"role": ..., "connections": {...}}}``.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.events2 "$(drbdsetup events2 --now)"
    """
    out = {}
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 3 or tokens[0] != "exists":
            continue
        kv = _kv(tokens[2:])
        name = kv.get("name")
        if not name:
            continue
        entry = out.setdefault(name, {"role": "Unknown", "connections": {}})
        if tokens[1] == "resource":
            entry["role"] = kv.get("role", "Unknown")
        elif tokens[1] == "connection":
            peer = kv.get("conn-name", kv.get("peer-node-id", "peer"))
            entry["connections"][peer] = kv.get("connection", "Unknown")
    return out


def synced(entry):
    """
    Return True when ``entry`` (one resource of :py:func:`status`) is up and every local
    and peer volume is UpToDate and connected.

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.synced "$(salt-call --out=json drbd.status r0 | jq -c .local.r0)"
    """
    if not entry or not entry.get("up"):
        return False
    if not entry["volumes"] or any(vol["disk"] != "UpToDate" for vol in entry["volumes"]):
        return False
    for peer in entry["peers"]:
        if peer["connection"] != "Connected":
            return False
        if any(vol["peer_disk"] != "UpToDate" for vol in peer["volumes"]):
            return False
    return True


def split_brain_in_log(text, minors, name):
    """
    Decide from kernel messages whether the last connection event of a resource was a
    detected split brain. Looks for DRBD's own lines (``block drbd0: Split-Brain
    detected ...`` on 8.4, ``drbd r0 ...: Split-Brain detected ...`` on 9).

    CLI Example:

    .. code-block:: bash

        salt-call drbd_parse.split_brain_in_log "$(dmesg)" '[0]' r0
    """
    prefixes = [f"drbd{minor}:" for minor in minors] + [f"drbd {name} ", f"drbd {name}/"]
    verdict = False
    for line in text.splitlines():
        if not any(prefix in line for prefix in prefixes):
            continue
        if "Split-Brain detected" in line:
            verdict = "unresolved" in line or "dropping connection" in line
        elif "-> Connected )" in line:
            verdict = False
    return verdict
