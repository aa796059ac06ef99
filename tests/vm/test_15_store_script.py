"""Long vm tier (vmfull): the script behind the unit mailcluster-store (salt/storage/boot), which a
drbd_ocfs2 node runs at every boot, run by hand on the real DRBD 8.4 + OCFS2 pair (these
guests' init is not systemd, so the storage role installs the script without the unit; the
unit at a guest's power cut is the seed tier's, tests/seed/test_30_power_cut.py):

- on a node whose store is up it changes nothing;
- ``stop`` unmounts and takes DRBD down; while the peer writes, ``start`` brings the node
  back: DRBD up, connected, resynced, Primary, OCFS2 mounted, the peer's file readable;
- with the peer refusing to connect it fails within its wait, saying so, and neither
  promotes nor mounts; once the peer connects it succeeds.
"""

from __future__ import annotations

import pytest
from vmtools import MOUNT, RESOURCE

# the long vm tier (MC_VM_FULL=1): about 2 minutes of TCG; the default run renders the
# script and its unit (tests/functional/test_storage_boot.py)
pytestmark = pytest.mark.vmfull

SCRIPT = "/usr/local/sbin/mailcluster-store"


def _state(g) -> tuple[str, str, bool]:
    cs = g.run(f"drbdadm cstate {RESOURCE}").stdout.strip()
    role = g.run(f"drbdadm role {RESOURCE}").stdout.strip()
    return cs, role, g.run(f"mountpoint -q {MOUNT}").rc == 0


def test_script_changes_nothing_on_a_node_whose_store_is_up(vm, storage_applied):
    g = vm["mx2"]
    before = g.run(f"stat -c %i {MOUNT}/. && drbdadm role {RESOURCE}", check=True).stdout
    run = g.run(f"{SCRIPT} start", timeout=300)
    assert run.rc == 0, run
    assert g.run(f"stat -c %i {MOUNT}/. && drbdadm role {RESOURCE}").stdout == before
    assert _state(g) == ("Connected", "Primary/Primary", True)


def test_stop_then_start_brings_the_node_back_after_the_peer_wrote(vm, storage_applied):
    g1, g2 = vm["mx1"], vm["mx2"]
    stop = g2.run(f"{SCRIPT} stop", timeout=300)
    assert stop.rc == 0, stop
    assert _state(g2)[2] is False
    assert g2.run(f"drbdadm cstate {RESOURCE}").stdout.strip() in ("Unconfigured", "")
    # the survivor writes while mx2 is down: mx2 returns behind it (a resync to it)
    digest = g1.run(
        f"head -c 4194304 /dev/urandom > {MOUNT}/while-mx2-down && sync && "
        f"md5sum < {MOUNT}/while-mx2-down",
        check=True,
        timeout=300,
    ).stdout
    start = g2.run(f"{SCRIPT} start", timeout=900)
    assert start.rc == 0, start
    cs, role, mounted = _state(g2)
    assert mounted and role == "Primary/Primary", (cs, role, mounted)
    assert g2.run(f"md5sum < {MOUNT}/while-mx2-down", check=True).stdout == digest
    assert "mounted" in start.stderr, start.stderr


def test_without_the_peer_it_fails_and_promotes_nothing(vm, storage_applied):
    g1, g2 = vm["mx1"], vm["mx2"]
    assert g2.run(f"{SCRIPT} stop", timeout=300).rc == 0
    # the same script with a 10 s wait for the peer instead of the pillar's 120 s
    g2.run(f"sed 's/^peer_wait=.*/peer_wait=10/' {SCRIPT} > /tmp/store-10s", check=True)
    g1.run(f"drbdadm disconnect {RESOURCE}", check=True)
    try:
        alone = g2.run("sh /tmp/store-10s start", timeout=300)
        assert alone.rc == 1, alone
        assert "no peer after 10 s" in alone.stderr and "not promoted" in alone.stderr, alone
        cs, role, mounted = _state(g2)
        assert role.startswith("Secondary/") and not mounted, (cs, role, mounted)
    finally:
        g1.run(f"drbdadm connect {RESOURCE}", check=True)
    back = g2.run(f"{SCRIPT} start", timeout=900)
    assert back.rc == 0, back
    assert _state(g2) == ("Connected", "Primary/Primary", True)
    assert _state(g1) == ("Connected", "Primary/Primary", True)
