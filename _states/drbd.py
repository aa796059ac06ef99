"""
Keep DRBD resources in a wanted state. Thin wrappers over the ``drbd`` execution module.

Every state reads the live state first, returns early when nothing differs, honours
``test=True`` with the changes it would make, acts, then reads back to confirm.

.. code-block:: yaml

    storage-drbd-r0-drbd-metadata_created:
      drbd.metadata_created:
        - name: r0

    storage-drbd-r0-drbd-up:
      drbd.up:
        - name: r0
        - require:
          - drbd: storage-drbd-r0-drbd-metadata_created

    storage-drbd-r0-drbd-dual_primary:
      drbd.dual_primary:
        - name: r0
        - timeout: 600
"""

import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "drbd"


def __virtual__():
    if "drbd.status" in __salt__:
        return __virtualname__
    return (False, "the drbd execution module is not available (drbdadm missing?)")


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _entry(name):
    return __salt__["drbd.status"](name)[name]


def _disk(entry):
    return "/".join(vol["disk"] for vol in entry["volumes"]) or "none"


def _peer_disk(entry):
    disks = [vol["peer_disk"] for peer in entry["peers"] for vol in peer["volumes"]]
    return "/".join(disks) or "none"


def _peer_roles(entry):
    return [peer["role"] for peer in entry["peers"]]


def _synced(entry):
    if not entry["up"] or not entry["volumes"]:
        return False
    if any(vol["disk"] != "UpToDate" for vol in entry["volumes"]):
        return False
    return all(
        peer["connection"] == "Connected"
        and all(vol["peer_disk"] == "UpToDate" for vol in peer["volumes"])
        for peer in entry["peers"]
    )


def metadata_created(name, force=False):
    """
    Make sure the backing disk of resource ``name`` carries DRBD metadata.

    Existing metadata is never touched, so the state is idempotent. Without ``force`` the
    creation is also refused when the disk holds anything drbdmeta asks about (a
    filesystem, foreign metadata); ``force=True`` passes ``--force`` for that case.

    name
        The DRBD resource.
    force
        Create metadata over other data on a disk that has no DRBD metadata yet.
    """
    ret = _ret(name)
    try:
        if __salt__["drbd.has_metadata"](name):
            ret.update(result=True, comment=f"DRBD resource {name} already has metadata")
            return ret
        changes = {"metadata": {"old": None, "new": "created"}}
        if __opts__["test"]:
            how = " with --force" if force else ""
            ret.update(
                result=None,
                comment=f"DRBD metadata would be created{how} for resource {name}",
                changes=changes,
            )
            return ret
        __salt__["drbd.createmd"](name, force=force)
        if not __salt__["drbd.has_metadata"](name):
            ret["comment"] = f"create-md ran but resource {name} still shows no valid metadata"
            return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, changes=changes, comment=f"DRBD metadata created for resource {name}")
    return ret


def up(name):
    """
    Make sure resource ``name`` is up (disk attached, connection configured).

    name
        The DRBD resource.
    """
    ret = _ret(name)
    try:
        if _entry(name)["up"]:
            ret.update(result=True, comment=f"DRBD resource {name} is already up")
            return ret
        changes = {"state": {"old": "down", "new": "up"}}
        if __opts__["test"]:
            ret.update(
                result=None, comment=f"DRBD resource {name} would be brought up", changes=changes
            )
            return ret
        __salt__["drbd.up"](name)
        if not _entry(name)["up"]:
            ret["comment"] = f"drbdadm up ran but resource {name} is still down"
            return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, changes=changes, comment=f"DRBD resource {name} is up")
    return ret


def _initial_force(entry):
    """(force, refusal): the initial promotion is forced only on two brand new sides."""
    local = {vol["disk"] for vol in entry["volumes"]}
    if local == {"UpToDate"}:
        return False, None
    peers_new = bool(entry["peers"]) and all(
        peer["connection"] == "Connected"
        and all(vol["peer_disk"] == "Inconsistent" for vol in peer["volumes"])
        for peer in entry["peers"]
    )
    if local == {"Inconsistent"} and peers_new:
        return True, None
    return False, (
        f"refusing a forced promotion: local disk {_disk(entry)}, peer disk "
        f"{_peer_disk(entry)}; an initial promotion is forced only when both sides are "
        "connected and Inconsistent (brand new)"
    )


def primary(name, initial=False):
    """
    Make sure this node is Primary for resource ``name``.

    name
        The DRBD resource.
    initial
        Allow the one forced promotion that starts the very first sync: only when this
        node and its connected peer are both Inconsistent (brand new metadata on both
        sides). In any other state an Inconsistent/Outdated node is never forced. Target
        exactly one node with ``initial: True``.
    """
    ret = _ret(name)
    try:
        entry = _entry(name)
        if not entry["up"]:
            ret["comment"] = f"DRBD resource {name} is down: bring it up first"
            return ret
        if entry["role"] == "Primary":
            ret.update(result=True, comment=f"DRBD resource {name} is already Primary")
            return ret
        force = False
        if initial:
            force, refusal = _initial_force(entry)
            if refusal:
                ret["comment"] = f"DRBD resource {name}: {refusal}"
                return ret
        changes = {"role": {"old": entry["role"], "new": "Primary"}}
        how = " with --force (initial sync: both sides Inconsistent)" if force else ""
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"DRBD resource {name} would be promoted to Primary{how}",
                changes=changes,
            )
            return ret
        __salt__["drbd.primary"](name, force=force)
        role = _entry(name)["role"]
        if role != "Primary":
            ret["comment"] = f"drbdadm primary ran but resource {name} is {role}"
            return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, changes=changes, comment=f"DRBD resource {name} promoted{how}")
    return ret


def secondary(name):
    """
    Make sure this node is not Primary for resource ``name`` (a resource that is down
    is not Primary either).

    name
        The DRBD resource.
    """
    ret = _ret(name)
    try:
        entry = _entry(name)
        if entry["role"] != "Primary":
            ret.update(result=True, comment=f"DRBD resource {name} is {entry['role']}")
            return ret
        changes = {"role": {"old": "Primary", "new": "Secondary"}}
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"DRBD resource {name} would be demoted to Secondary",
                changes=changes,
            )
            return ret
        __salt__["drbd.secondary"](name)
        role = _entry(name)["role"]
        if role == "Primary":
            ret["comment"] = f"drbdadm secondary ran but resource {name} is still Primary"
            return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, changes=changes, comment=f"DRBD resource {name} demoted")
    return ret


def synced(name, timeout=300):
    """
    Wait up to ``timeout`` seconds until resource ``name`` is connected and UpToDate on
    both sides. Waiting changes nothing, so ``changes`` stays empty.

    name
        The DRBD resource.
    timeout
        Seconds to wait for the sync.
    """
    ret = _ret(name)
    try:
        entry = _entry(name)
        if not entry["up"]:
            ret["comment"] = f"DRBD resource {name} is down: it cannot sync"
            return ret
        if _synced(entry):
            ret.update(result=True, comment=f"DRBD resource {name} is in sync")
            return ret
        now = f"local disk {_disk(entry)}, peer disk {_peer_disk(entry)}"
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"would wait up to {timeout} s for DRBD resource {name} to sync ({now})",
            )
            return ret
        start = time.monotonic()
        if not __salt__["drbd.wait_sync"](name, timeout=timeout):
            entry = _entry(name)
            ret["comment"] = (
                f"DRBD resource {name} not in sync after {timeout} s (local disk "
                f"{_disk(entry)}, peer disk {_peer_disk(entry)})"
            )
            return ret
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret.update(
        result=True,
        comment=f"DRBD resource {name} in sync after {time.monotonic() - start:.0f} s",
    )
    return ret


def dual_primary(name, timeout=300, interval=1):
    """
    Make sure resource ``name`` is Primary on this node and on its peer.

    Waits (up to ``timeout``) for the sync before promoting, promotes this node without
    force, then waits for the peer to become Primary (its own run of this state promotes
    it: apply it on both nodes at the same time). Needs ``allow-two-primaries yes`` and
    protocol C in the resource; DRBD itself refuses otherwise.

    name
        The DRBD resource.
    timeout
        Seconds to wait for the sync, then again for the peer.
    """
    ret = _ret(name)
    changes = {}
    try:
        entry = _entry(name)
        if not entry["up"]:
            ret["comment"] = f"DRBD resource {name} is down: bring it up first"
            return ret
        if not entry["peers"]:
            ret["comment"] = f"DRBD resource {name} has no peer"
            return ret
        peer_roles = _peer_roles(entry)
        if entry["role"] == "Primary" and all(role == "Primary" for role in peer_roles):
            ret.update(result=True, comment=f"DRBD resource {name} is already dual primary")
            return ret
        if entry["role"] != "Primary":
            changes = {"role": {"old": entry["role"], "new": "Primary"}}
        if __opts__["test"]:
            steps = []
            if changes:
                if not _synced(entry):
                    steps.append(f"wait up to {timeout} s for the sync")
                steps.append("promote this node to Primary")
            steps.append(f"wait up to {timeout} s for the peer (now {'/'.join(peer_roles)})")
            ret.update(
                result=None,
                comment=f"DRBD resource {name} would: {'; '.join(steps)}",
                changes=changes,
            )
            return ret
        if changes:
            if not _synced(entry) and not __salt__["drbd.wait_sync"](name, timeout=timeout):
                ret["comment"] = (
                    f"DRBD resource {name} not in sync after {timeout} s: not promoting"
                )
                return ret
            __salt__["drbd.primary"](name)
        deadline = time.monotonic() + float(timeout)
        while True:
            entry = _entry(name)
            peer_roles = _peer_roles(entry)
            if entry["role"] == "Primary" and all(role == "Primary" for role in peer_roles):
                break
            if time.monotonic() >= deadline:
                ret.update(
                    changes=changes,
                    comment=(
                        f"DRBD resource {name} is {entry['role']} here but the peer is "
                        f"{'/'.join(peer_roles) or 'gone'} after {timeout} s"
                    ),
                )
                return ret
            time.sleep(interval)
    except CommandExecutionError as exc:
        ret.update(changes=changes, comment=str(exc))
        return ret
    ret.update(result=True, changes=changes, comment=f"DRBD resource {name} is dual primary")
    return ret
