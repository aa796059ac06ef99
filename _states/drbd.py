"""
Keep DRBD resources in a wanted state. Thin wrappers over the ``drbd`` execution module.

Every state reads the live state first, returns early when nothing differs, honours
``test=True`` with the changes it would make, acts, then reads back to confirm: each one
gives its read, act and read-back to the shared skeleton (``_states/mc_flow.py``).

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

__virtualname__ = "drbd"


def __virtual__():
    if "drbd.status" not in __salt__:
        return (False, "the drbd execution module is not available (drbdadm missing?)")
    if "mc_flow.converge" not in __states__:
        return (False, "the drbd states need the shared skeleton (_states/mc_flow.py not loaded)")
    return __virtualname__


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
    return __salt__["drbd_parse.synced"](entry)


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

    def plan():
        if __salt__["drbd.has_metadata"](name):
            return {"result": True, "comment": f"DRBD resource {name} already has metadata"}
        how = " with --force" if force else ""
        return {
            "changes": {"metadata": {"old": None, "new": "created"}},
            "would": f"DRBD metadata would be created{how} for resource {name}",
            "done": f"DRBD metadata created for resource {name}",
        }

    def act(_step):
        __salt__["drbd.createmd"](name, force=force)

    def confirm(_step):
        if not __salt__["drbd.has_metadata"](name):
            return f"create-md ran but resource {name} still shows no valid metadata"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)


def up(name):
    """
    Make sure resource ``name`` is up (disk attached, connection configured).

    name
        The DRBD resource.
    """

    def plan():
        if _entry(name)["up"]:
            return {"result": True, "comment": f"DRBD resource {name} is already up"}
        return {
            "changes": {"state": {"old": "down", "new": "up"}},
            "would": f"DRBD resource {name} would be brought up",
            "done": f"DRBD resource {name} is up",
        }

    def act(_step):
        __salt__["drbd.up"](name)

    def confirm(_step):
        if not _entry(name)["up"]:
            return f"drbdadm up ran but resource {name} is still down"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)


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

    def plan():
        entry = _entry(name)
        if not entry["up"]:
            return {"result": False, "comment": f"DRBD resource {name} is down: bring it up first"}
        if entry["role"] == "Primary":
            return {"result": True, "comment": f"DRBD resource {name} is already Primary"}
        force = False
        if initial:
            force, refusal = _initial_force(entry)
            if refusal:
                return {"result": False, "comment": f"DRBD resource {name}: {refusal}"}
        how = " with --force (initial sync: both sides Inconsistent)" if force else ""
        return {
            "changes": {"role": {"old": entry["role"], "new": "Primary"}},
            "would": f"DRBD resource {name} would be promoted to Primary{how}",
            "done": f"DRBD resource {name} promoted{how}",
            "force": force,
        }

    def act(step):
        __salt__["drbd.primary"](name, force=step["force"])

    def confirm(_step):
        role = _entry(name)["role"]
        if role != "Primary":
            return f"drbdadm primary ran but resource {name} is {role}"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)


def secondary(name):
    """
    Make sure this node is not Primary for resource ``name`` (a resource that is down
    is not Primary either).

    name
        The DRBD resource.
    """

    def plan():
        role = _entry(name)["role"]
        if role != "Primary":
            return {"result": True, "comment": f"DRBD resource {name} is {role}"}
        return {
            "changes": {"role": {"old": "Primary", "new": "Secondary"}},
            "would": f"DRBD resource {name} would be demoted to Secondary",
            "done": f"DRBD resource {name} demoted",
        }

    def act(_step):
        __salt__["drbd.secondary"](name)

    def confirm(_step):
        if _entry(name)["role"] == "Primary":
            return f"drbdadm secondary ran but resource {name} is still Primary"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)


def synced(name, timeout=300):
    """
    Wait up to ``timeout`` seconds until resource ``name`` is connected and UpToDate on
    both sides. Waiting changes nothing, so ``changes`` stays empty.

    name
        The DRBD resource.
    timeout
        Seconds to wait for the sync.
    """

    def plan():
        entry = _entry(name)
        if not entry["up"]:
            return {"result": False, "comment": f"DRBD resource {name} is down: it cannot sync"}
        if _synced(entry):
            return {"result": True, "comment": f"DRBD resource {name} is in sync"}
        now = f"local disk {_disk(entry)}, peer disk {_peer_disk(entry)}"
        return {
            "changes": {},
            "would": f"would wait up to {timeout} s for DRBD resource {name} to sync ({now})",
            "done": None,
        }

    def confirm(step):
        start = time.monotonic()
        if not __salt__["drbd.wait_sync"](name, timeout=timeout):
            entry = _entry(name)
            return (
                f"DRBD resource {name} not in sync after {timeout} s (local disk "
                f"{_disk(entry)}, peer disk {_peer_disk(entry)})"
            )
        step["done"] = f"DRBD resource {name} in sync after {time.monotonic() - start:.0f} s"
        return None

    return __states__["mc_flow.converge"](name, plan, None, confirm)


def _dual(entry):
    return entry["role"] == "Primary" and all(role == "Primary" for role in _peer_roles(entry))


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

    def plan():
        entry = _entry(name)
        if not entry["up"]:
            return {"result": False, "comment": f"DRBD resource {name} is down: bring it up first"}
        if not entry["peers"]:
            return {"result": False, "comment": f"DRBD resource {name} has no peer"}
        if _dual(entry):
            return {"result": True, "comment": f"DRBD resource {name} is already dual primary"}
        changes = {}
        steps = []
        if entry["role"] != "Primary":
            changes = {"role": {"old": entry["role"], "new": "Primary"}}
            if not _synced(entry):
                steps.append(f"wait up to {timeout} s for the sync")
            steps.append("promote this node to Primary")
        steps.append(f"wait up to {timeout} s for the peer (now {'/'.join(_peer_roles(entry))})")
        return {
            "changes": changes,
            "would": f"DRBD resource {name} would: {'; '.join(steps)}",
            "done": f"DRBD resource {name} is dual primary",
            "entry": entry,
        }

    def act(step):
        if not step["changes"]:
            return None
        if not _synced(step["entry"]) and not __salt__["drbd.wait_sync"](name, timeout=timeout):
            return f"DRBD resource {name} not in sync after {timeout} s: not promoting"
        __salt__["drbd.primary"](name)
        return None

    def confirm(_step):
        deadline = time.monotonic() + float(timeout)
        while True:
            entry = _entry(name)
            if _dual(entry):
                return None
            if time.monotonic() >= deadline:
                return (
                    f"DRBD resource {name} is {entry['role']} here but the peer is "
                    f"{'/'.join(_peer_roles(entry)) or 'gone'} after {timeout} s"
                )
            time.sleep(interval)

    return __states__["mc_flow.converge"](
        name, plan, act, confirm, report_unconfirmed=True, report_error=True
    )
