"""
Grains: what HA building blocks this node physically has.

One grain, ``mailcluster_ha``::

    mailcluster_ha:
      drbd:
        utils_version: 9.22.0      # drbd-utils (drbdadm --version)
        kernel_version: 8.4.11     # /proc/drbd; None when the module is not loaded
        resources:                 # configured resources and their local role;
          r0: Primary              # "Unconfigured" when down, "Unknown" if unreadable
      o2cb:
        cluster: mail              # O2CB_BOOTCLUSTER in /etc/default/o2cb
        enabled: true              # O2CB_ENABLED
        online: true               # registered in configfs
      heartbeat:
        installed: true
        running: true              # cl_status hbstatus
        node: mx1                  # uname -n when ha.cf lists it, else None
      keepalived:                  # the other mover (ha:mover, docs/keepalived.md)
        installed: true
        running: true              # systemctl is-active keepalived
        node: mx1                  # uname -n when keepalived.conf has its instance

Cheap and local: files, and short local commands with a 5 s timeout (never the network,
never loading a kernel module). A missing tool gives an empty section; no failure
propagates (``{}`` at worst).
"""

import logging
import os
import re
import shutil
import subprocess

log = logging.getLogger(__name__)

_TIMEOUT = 5


def _run(cmd):
    """Return stdout of a short local command, or None on any failure."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("mailcluster_ha grain: %s failed: %s", cmd, exc)
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _parse_kv(text):
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("\"'")
    return values


def _parse_proc_version(text):
    match = re.search(r"^version:\s*(\S+)", text or "", re.M)
    return match.group(1) if match else None


def _parse_events2_roles(text):
    roles = {}
    for line in (text or "").splitlines():
        tokens = line.split()
        if len(tokens) > 2 and tokens[:2] == ["exists", "resource"]:
            values = dict(tok.split(":", 1) for tok in tokens[2:] if ":" in tok)
            if "name" in values:
                roles[values["name"]] = values.get("role", "Unknown")
    return roles


def _ha_cf_nodes(text):
    nodes = []
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "node":
            nodes.extend(words[1:])
    return nodes


def _drbd():
    if shutil.which("drbdadm") is None:
        return {}
    out = {}
    version = _parse_kv(_run(["drbdadm", "--version"]))
    out["utils_version"] = version.get("DRBDADM_VERSION")
    proc = _read("/proc/drbd")
    out["kernel_version"] = _parse_proc_version(proc)
    configured = (_run(["drbdadm", "sh-resources"]) or "").split()
    roles = {}
    if proc is not None:  # module loaded: asking drbdsetup does not load it
        roles = _parse_events2_roles(_run(["drbdsetup", "events2", "--now"]))
    resources = {name: "Unconfigured" for name in configured}
    resources.update(roles)
    out["resources"] = resources
    return out


def _o2cb():
    defaults = _read("/etc/default/o2cb")
    if defaults is None and shutil.which("o2cb") is None:
        return {}
    values = _parse_kv(defaults)
    cluster = values.get("O2CB_BOOTCLUSTER") or None
    return {
        "cluster": cluster,
        "enabled": values.get("O2CB_ENABLED", "false").lower() == "true",
        "online": bool(cluster) and os.path.isdir(f"/sys/kernel/config/cluster/{cluster}"),
    }


def _heartbeat():
    if shutil.which("cl_status") is None:
        return {"installed": False, "running": False, "node": None}
    running = _run(["cl_status", "hbstatus"]) is not None
    nodename = os.uname().nodename
    node = nodename if nodename in _ha_cf_nodes(_read("/etc/ha.d/ha.cf")) else None
    return {"installed": True, "running": running, "node": node}


def _keepalived():
    if shutil.which("keepalived") is None:
        return {"installed": False, "running": False, "node": None}
    running = _run(["systemctl", "is-active", "--quiet", "keepalived"]) is not None
    nodename = os.uname().nodename
    conf = _read("/etc/keepalived/keepalived.conf") or ""
    node = (
        nodename
        if re.search(rf"^\s*vrrp_instance\s+mc_{re.escape(nodename)}\b", conf, re.M)
        else None
    )
    return {"installed": True, "running": running, "node": node}


def mailcluster_ha():
    """
    Return the ``mailcluster_ha`` grain (see the module documentation).
    """
    grain = {}
    parts = (
        ("drbd", _drbd),
        ("o2cb", _o2cb),
        ("heartbeat", _heartbeat),
        ("keepalived", _keepalived),
    )
    for key, func in parts:
        try:
            grain[key] = func()
        except Exception as exc:  # grains must never fail
            log.debug("mailcluster_ha grain: %s failed: %s", key, exc)
            grain[key] = {}
    return {"mailcluster_ha": grain}
