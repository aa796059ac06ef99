"""
Manage DRBD resources with ``drbdadm`` and ``drbdsetup``.

Salt 3008 ships no ``drbd`` module; this one is ours. It works with the in-kernel
DRBD 8.4 driven by drbd-utils 9 (where ``drbdadm`` hands off to ``drbdsetup-84`` and
``drbdsetup status --json`` is refused) and with DRBD 9. It only reads the text forms
that both understand (``drbdsetup status --verbose --statistics``), so one parser covers
both generations.

:depends: drbd-utils (``drbdadm``, ``drbdsetup``)

The shape of :py:func:`status` is documented with its parser (``_modules/drbd_parse.py``,
which this module reaches through ``__salt__``) and in docs/modules.md. A resource that is
configured but down has ``up: False`` and role ``Unconfigured``; a name that is not
configured raises :py:exc:`~salt.exceptions.CommandExecutionError` naming it.
"""

import logging
import re
import time

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "drbd"

_NOT_DEFINED = re.compile(r"'([^']+)' not defined in your config")
_NO_METADATA = "No valid meta data found"


def __virtual__():
    if salt.utils.path.which("drbdadm") is None:
        return (False, "drbdadm not found: install drbd-utils")
    if "drbd_parse.status" not in __salt__:
        return (False, "drbd needs drbd_parse (module not loaded)")
    return __virtualname__


# ---------------------------------------------------------------------------
# Command helpers
# ---------------------------------------------------------------------------


def _run(cmd, ok_retcodes=(0,), stdin=None, raise_on_error=True):
    kwargs = {"python_shell": False, "ignore_retcode": True, "output_loglevel": "debug"}
    if stdin is not None:
        kwargs["stdin"] = stdin
    res = __salt__["cmd.run_all"](cmd, **kwargs)
    res["stdout"] = __salt__["drbd_parse.strip_ansi"](res.get("stdout", ""))
    res["stderr"] = __salt__["drbd_parse.strip_ansi"](res.get("stderr", ""))
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
        text = _run(["drbdadm", "--version"])["stdout"]
        __context__["drbd.version"] = __salt__["drbd_parse.version"](text)
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
    return __salt__["drbd_parse.dump"](res["stdout"])


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
        if __salt__["drbd_parse.is_down"](_combined(res)):
            if check_known:
                _require_known(name)
            return __salt__["drbd_parse.down_entry"]()
        _raise(cmd, res)
    found = __salt__["drbd_parse.status"](res["stdout"]).get(name)
    return found if found is not None else __salt__["drbd_parse.down_entry"]()


def _pair_or_down(verb, name):
    cmd = ["drbdadm", verb, name]
    res = _run(cmd, raise_on_error=False)
    if res["retcode"] == 0:
        return res["stdout"]
    if __salt__["drbd_parse.is_down"](_combined(res)):
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
    return __salt__["drbd_parse.role_pair"](out)


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
    return __salt__["drbd_parse.role_pair"](res["stdout"])


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
    return _drbdadm("primary", name, *(["--force"] if force else []))


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
    return _drbdadm("connect", name, *(["--discard-my-data"] if discard_my_data else []))


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
    return __salt__["drbd_parse.synced"](status(name)[name])


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
        if __salt__["drbd_parse.synced"](entry):
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
    names = sorted(__salt__["drbd_parse.dump"](res["stdout"]))
    return {"valid": True, "resources": names, "error": None}


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
    found = __salt__["drbd_parse.split_brain_in_log"](res["stdout"], minors, name)
    return {
        "split_brain": found,
        "connection": connection,
        "evidence": "kernel log: Split-Brain detected"
        if found
        else "StandAlone without split brain in the kernel log",
    }
