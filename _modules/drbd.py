"""
Manage DRBD resources with ``drbdadm`` and ``drbdsetup``.

Salt 3008 ships no ``drbd`` module; this one is ours. It works with the in-kernel
DRBD 8.4 driven by drbd-utils 9 (where ``drbdadm`` hands off to ``drbdsetup-84`` and
``drbdsetup status --json`` is refused) and with DRBD 9. It only reads the text forms
that both understand (``drbdsetup status --verbose --statistics``), so one parser covers
both generations.

:depends: drbd-utils (``drbdadm``, ``drbdsetup``)

Status shape
------------
:py:func:`status` returns one entry per resource:

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
``DUnknown``. A resource that is configured but down has ``up: False``, role
``Unconfigured`` and empty ``volumes``/``peers``. A name that is not configured raises
:py:exc:`~salt.exceptions.CommandExecutionError` naming it.
"""

import logging
import re
import time

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "drbd"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DOWN_MARKERS = ("No such resource", "Device minor not allocated", "unknown minor")
_NOT_DEFINED = re.compile(r"'([^']+)' not defined in your config")
_NO_METADATA = "No valid meta data found"
_DISK_STATES = (
    "Diskless",
    "Attaching",
    "Detaching",
    "Failed",
    "Negotiating",
    "Inconsistent",
    "Outdated",
    "DUnknown",
    "Consistent",
    "UpToDate",
)


def __virtual__():
    if salt.utils.path.which("drbdadm") is None:
        return (False, "drbdadm not found: install drbd-utils")
    return __virtualname__


# ---------------------------------------------------------------------------
# Pure parsers (no I/O): fed with real command output in tests/unit.
# ---------------------------------------------------------------------------


def _strip_ansi(text):
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


def _parse_status(text):
    """
    Parse ``drbdsetup status [--verbose --statistics]`` / ``drbdadm status`` text.

    Handles DRBD 8.4 (through drbdsetup-84) and DRBD 9 layouts, several volumes and
    peers, and ANSI colours. Returns ``{name: {...}}`` in the documented shape.
    """
    resources = {}
    res = None
    section = None  # "resource", "device" or "peer": what the last indent-2 line opened
    for raw in _strip_ansi(text).splitlines():
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


def _down_entry():
    return {"role": "Unconfigured", "suspended": False, "up": False, "volumes": [], "peers": []}


def _is_down_output(text):
    return any(marker in text for marker in _DOWN_MARKERS)


def _parse_dump(text):
    """
    Parse ``drbdadm dump [all]`` into ``{name: {"file": ..., "hosts": {...}, "options": {...}}}``.

    ``hosts`` maps each ``on HOST`` section to its ``device``, ``minor``, ``disk``,
    ``meta_disk``, ``address`` and ``node_id``; ``options`` holds the ``net``/``disk``/
    ``options`` sections as ``{section: {key: value}}``.
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


def _parse_role_pair(text):
    """``Primary/Secondary`` -> ``{"local": "Primary", "peer": "Secondary"}``."""
    line = _strip_ansi(text).strip().splitlines()
    value = line[0].strip() if line else ""
    local, _, peer = value.partition("/")
    return {"local": local or None, "peer": peer or None}


def _parse_version(text):
    """
    Parse ``drbdadm --version``.

    Returns ``{"utils": "9.22.0", "kernel": "8.4.11" or None, "api": 1}``; ``kernel``
    is None when the DRBD kernel module is not loaded.
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


def _parse_proc_drbd(text):
    """Parse ``/proc/drbd``: ``{"version": "8.4.11", "minors": {0: {...}}}``."""
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


def _parse_events2(text):
    """Parse ``drbdsetup events2 --now`` into ``{name: {"role": ..., "connections": {...}}}``."""
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


def _synced(entry):
    """True when every local volume and every peer volume is UpToDate and connected."""
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


def _split_brain_in_log(text, minors, name):
    """
    Decide from kernel messages whether the last connection event of a resource was a
    detected split brain. Looks for DRBD's own lines (``block drbd0: Split-Brain
    detected ...`` on 8.4, ``drbd r0 ...: Split-Brain detected ...`` on 9).
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


# ---------------------------------------------------------------------------
# Command helpers
# ---------------------------------------------------------------------------


def _run(cmd, ok_retcodes=(0,), stdin=None, raise_on_error=True):
    kwargs = {"python_shell": False, "ignore_retcode": True, "output_loglevel": "debug"}
    if stdin is not None:
        kwargs["stdin"] = stdin
    res = __salt__["cmd.run_all"](cmd, **kwargs)
    res["stdout"] = _strip_ansi(res.get("stdout", ""))
    res["stderr"] = _strip_ansi(res.get("stderr", ""))
    if raise_on_error and res["retcode"] not in ok_retcodes:
        _raise(cmd, res)
    return res


def _raise(cmd, res, message=None):
    output = (res.get("stderr") or "").strip() or (res.get("stdout") or "").strip()
    match = _NOT_DEFINED.search(output)
    if message is None and match:
        message = f"DRBD resource '{match.group(1)}' is not defined in the configuration"
    text = message or "DRBD command failed"
    raise CommandExecutionError(f"{text}: '{' '.join(cmd)}' (rc={res.get('retcode')}): {output}")


def _combined(res):
    return f"{res.get('stdout', '')}\n{res.get('stderr', '')}"


def _require_known(name):
    if name not in resources():
        raise CommandExecutionError(f"DRBD resource '{name}' is not defined in the configuration")


def _drbdadm(verb, name, *options, stdin=None):
    cmd = ["drbdadm", verb, *options, name]
    res = _run(cmd, raise_on_error=False, stdin=stdin)
    if res["retcode"] != 0:
        _raise(cmd, res)
    return True


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def version():
    """
    Return the drbd-utils and kernel module versions.

    ``kernel`` is None when the DRBD module is not loaded (the command does not load it).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.version
    """
    if "drbd.version" not in __context__ or __context__["drbd.version"]["kernel"] is None:
        __context__["drbd.version"] = _parse_version(_run(["drbdadm", "--version"])["stdout"])
    return dict(__context__["drbd.version"])


def config():
    """
    Return the configured resources as ``drbdadm dump all`` sees them.

    ``{"r0": {"file": "/etc/drbd.d/r0.res", "hosts": {"node1": {"device": "/dev/drbd0",
    "minor": 0, "disk": "/dev/vdb", "meta_disk": "internal", "address":
    "10.99.0.1:7789"}, ...}, "options": {"net": {"protocol": "C", ...}}}}``

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.config
    """
    res = _run(["drbdadm", "dump", "all"], raise_on_error=False)
    if res["retcode"] != 0:
        if "no resources defined" in _combined(res):
            return {}
        _raise(["drbdadm", "dump", "all"], res)
    return _parse_dump(res["stdout"])


def resources():
    """
    Return the sorted names of the resources configured for this host.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.resources
    """
    return sorted(config())


def status(name="all"):
    """
    Return the live state of one resource or of all configured resources.

    See the module documentation for the shape. A configured resource that is down is
    returned with ``up: False`` and role ``Unconfigured``; an unknown name raises
    ``CommandExecutionError``.

    name
        Resource name, or ``all`` (default).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.status
        salt '*' drbd.status r0
    """
    if name != "all":
        return {name: _status_one(name, check_known=True)}
    return {res_name: _status_one(res_name) for res_name in resources()}


def _status_one(name, check_known=False):
    cmd = ["drbdsetup", "status", name, "--verbose", "--statistics"]
    res = _run(cmd, raise_on_error=False)
    if res["retcode"] != 0:
        if _is_down_output(_combined(res)):
            if check_known:
                _require_known(name)
            return _down_entry()
        _raise(cmd, res)
    return _parse_status(res["stdout"]).get(name, _down_entry())


def _pair_or_down(verb, name):
    cmd = ["drbdadm", verb, name]
    res = _run(cmd, raise_on_error=False)
    if res["retcode"] == 0:
        return res["stdout"]
    if _is_down_output(_combined(res)):
        _require_known(name)
        return None
    _raise(cmd, res)


def role(name):
    """
    Return the local and peer role: ``{"local": "Primary", "peer": "Secondary"}``.

    A resource that is down returns ``{"local": "Unconfigured", "peer": None}``. With
    DRBD 9's ``drbdadm`` (local role only) ``peer`` is None: use :py:func:`status`.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.role r0
    """
    out = _pair_or_down("role", name)
    if out is None:
        return {"local": "Unconfigured", "peer": None}
    return _parse_role_pair(out)


def cstate(name):
    """
    Return the connection state (``Connected``, ``Connecting``, ``StandAlone``...).

    A resource that is down returns ``Unconfigured``.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.cstate r0
    """
    out = _pair_or_down("cstate", name)
    if out is None:
        return "Unconfigured"
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[0] if lines else "Unknown"


def dstate(name):
    """
    Return the disk states: ``{"local": "UpToDate", "peer": "UpToDate"}``.

    On a resource that is down ``drbdadm`` reads the on-disk metadata, so ``local`` is
    e.g. ``Consistent`` and ``peer`` None. Without valid metadata ``local`` is None.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.dstate r0
    """
    cmd = ["drbdadm", "dstate", name]
    res = _run(cmd, raise_on_error=False)
    if res["retcode"] != 0:
        if _NO_METADATA in _combined(res):
            return {"local": None, "peer": None}
        _raise(cmd, res)
    return _parse_role_pair(res["stdout"])


def has_metadata(name):
    """
    Return True when the backing disk of ``name`` carries valid DRBD metadata.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.has_metadata r0
    """
    local = dstate(name)["local"]
    return local is not None and local not in ("Diskless", "Unconfigured")


def createmd(name, force=False):
    """
    Create DRBD metadata on the backing disk of ``name``.

    Without ``force`` the command never overwrites anything: drbdmeta's questions are
    answered "no" (existing metadata, a filesystem in the way) and the refusal is raised
    as ``CommandExecutionError``. ``force=True`` passes ``--force`` (it still refuses to
    truncate a filesystem that fills the device).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.createmd r0
        salt '*' drbd.createmd r0 force=True
    """
    cmd = ["drbdadm", "create-md", name]
    if force:
        cmd = ["drbdadm", "--", "--force", "create-md", name]
    res = _run(cmd, raise_on_error=False, stdin="no\n")
    if res["retcode"] != 0:
        _raise(cmd, res, message=f"create-md refused on DRBD resource '{name}'")
    return True


def up(name):
    """
    Bring a resource up (attach its disk and connect): ``drbdadm up``.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.up r0
    """
    return _drbdadm("up", name)


def down(name):
    """
    Take a resource down: ``drbdadm down``.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.down r0
    """
    return _drbdadm("down", name)


def adjust(name):
    """
    Make the running resource match its configuration file: ``drbdadm adjust``.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.adjust r0
    """
    return _drbdadm("adjust", name)


def primary(name, force=False):
    """
    Promote the local node to Primary.

    ``force=True`` promotes over Inconsistent data (``drbdadm primary --force``): only
    for the initial sync of a brand new resource.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.primary r0
    """
    if force:
        return _drbdadm("primary", name, "--force")
    return _drbdadm("primary", name)


def secondary(name):
    """
    Demote the local node to Secondary.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.secondary r0
    """
    return _drbdadm("secondary", name)


def connect(name, discard_my_data=False):
    """
    Connect a resource to its peer. ``discard_my_data=True`` makes this node the split
    brain victim (``--discard-my-data``).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.connect r0
    """
    if discard_my_data:
        return _drbdadm("connect", name, "--discard-my-data")
    return _drbdadm("connect", name)


def disconnect(name):
    """
    Disconnect a resource from its peer (it goes StandAlone).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.disconnect r0
    """
    return _drbdadm("disconnect", name)


def is_synced(name):
    """
    Return True when ``name`` is up, connected, and UpToDate on both sides.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.is_synced r0
    """
    return _synced(status(name)[name])


def wait_sync(name, timeout=300, interval=1):
    """
    Wait up to ``timeout`` seconds until :py:func:`is_synced` is true.

    Returns True when synced, False on timeout. A resource that is down raises
    ``CommandExecutionError`` at once (it would never sync).

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.wait_sync r0 timeout=600
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        entry = status(name)[name]
        if not entry["up"]:
            raise CommandExecutionError(f"DRBD resource '{name}' is down: it cannot sync")
        if _synced(entry):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def check_config(path):
    """
    Validate a DRBD configuration file without applying it (``drbdadm -c PATH dump all``).

    The file must be complete on its own (a resource file with its ``on`` sections is).
    drbdadm also checks that this host's address in it exists locally.

    Returns ``{"valid": True, "resources": ["r0"], "error": None}`` or
    ``{"valid": False, "resources": [], "error": "<drbdadm's message>"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.check_config /etc/drbd.d/r0.res
    """
    res = _run(["drbdadm", "-c", path, "dump", "all"], raise_on_error=False)
    if res["retcode"] != 0:
        error = "\n".join(
            line
            for line in _combined(res).strip().splitlines()
            if line.strip() and "modinfo" not in line
        )
        return {"valid": False, "resources": [], "error": error}
    return {"valid": True, "resources": sorted(_parse_dump(res["stdout"])), "error": None}


def split_brain(name):
    """
    Tell whether ``name`` is in an unresolved split brain.

    DRBD drops the connection (``StandAlone``) when it detects a split brain it may not
    resolve by itself, and logs ``Split-Brain detected``. Returns::

        {"split_brain": True|False, "connection": "StandAlone", "evidence": "..."}

    ``split_brain`` is True when a peer is StandAlone and the kernel log says the last
    connection attempt found a split brain; a StandAlone peer without readable kernel
    log is reported with ``split_brain: None`` (unknown) and the reason as evidence.

    CLI Example:

    .. code-block:: bash

        salt '*' drbd.split_brain r0
    """
    entry = status(name)[name]
    if not entry["up"]:
        return {"split_brain": False, "connection": "Unconfigured", "evidence": "resource is down"}
    connections = [peer["connection"] for peer in entry["peers"]] or ["StandAlone"]
    standalone = "StandAlone" in connections
    connection = "StandAlone" if standalone else connections[0]
    if not standalone:
        return {"split_brain": False, "connection": connection, "evidence": "peer connection"}
    res = _run(["dmesg"], raise_on_error=False)
    if res["retcode"] != 0:
        return {
            "split_brain": None,
            "connection": connection,
            "evidence": f"StandAlone; kernel log unreadable: {res['stderr'].strip()}",
        }
    minors = [vol["minor"] for vol in entry["volumes"] if vol["minor"] is not None]
    found = _split_brain_in_log(res["stdout"], minors, name)
    return {
        "split_brain": found,
        "connection": connection,
        "evidence": "kernel log: Split-Brain detected"
        if found
        else "StandAlone without split brain in the kernel log",
    }
