"""Long vm tier (``vmfull``, MC_VM_FULL=1): a lost node, its return, and a split brain.

Runs after the short tier on the same pair (dual primary, OCFS2 mounted on both).
"""

from __future__ import annotations

import time

import pytest
from vmtools import MOUNT, RESOURCE, changed_states, failed_states

pytestmark = pytest.mark.vmfull

SB_EVENT = b"mailcluster/storage/drbd/split-brain"
# o2cb defaults of the test pillar: a dead node is declared after (31 - 1) * 2 s of missed
# disk heartbeat; add the network idle timeout, DRBD's peer-loss detection and journal replay.
IO_PAUSE_BOUND_S = (31 - 1) * 2 + 30 + 30


def role(vm, name):
    return vm.rets(name, [["drbd.role", [RESOURCE]]])[0]


def test_kill_one_node_survivor_stays_primary_and_io_resumes(vm, storage_applied):
    for g in (vm["mx1"], vm["mx2"]):
        # both nodes take cluster locks on the directory before the crash
        g.run(f"echo {g.name} > {MOUNT}/before-kill-{g.name} && sync", check=True)
    t_kill = time.monotonic()
    vm["mx2"].kill()
    probe = vm["mx1"].run(
        f"echo written-while-mx2-dead > {MOUNT}/during-outage && sync "
        f"&& cat {MOUNT}/before-kill-mx2",
        timeout=IO_PAUSE_BOUND_S + 60,
    )
    pause = time.monotonic() - t_kill
    vm.timings["io_pause_after_kill_s"] = round(pause, 1)
    print(f"\nI/O pause on the survivor after the kill: {pause:.1f} s")
    assert probe.rc == 0 and probe.stdout.strip() == "mx2", probe
    assert pause < IO_PAUSE_BOUND_S, f"I/O resumed only after {pause:.0f} s"
    status = vm.rets("mx1", [["drbd.status", [RESOURCE]]])[0][RESOURCE]
    assert status["role"] == "Primary", status
    (peer,) = status["peers"]
    assert peer["connection"] in ("Connecting", "WFConnection"), peer
    assert peer["role"] == "Unknown", peer
    assert [v["disk"] for v in status["volumes"]] == ["UpToDate"], status


def test_lost_node_returns_resyncs_and_is_primary_again(vm, storage_applied):
    g = vm["mx2"]
    g.start()
    g.wait_ready()
    vm.setup_salt(g)
    ret = vm.apply("mx2")
    assert not failed_states(ret), failed_states(ret)
    for name in vm.names:
        assert role(vm, name) == {"local": "Primary", "peer": "Primary"}, name
        assert vm.rets(name, [["drbd.is_synced", [RESOURCE]]]) == [True]
    # what the survivor wrote during the outage reached the returning node
    out = g.run(f"cat {MOUNT}/during-outage", check=True).stdout.strip()
    assert out == "written-while-mx2-dead"
    again = vm.apply_both()
    for name, r in again.items():
        assert not failed_states(r) and not changed_states(r), (name, changed_states(r))


def _force_split_brain(vm):
    """Disconnect, write on both sides, reconnect: DRBD finds a split brain."""
    vm["mx2"].run(f"umount {MOUNT}", check=True, timeout=120)
    for name in vm.names:
        vm[name].run(f"drbdadm disconnect {RESOURCE}", check=True)
    # mx1 writes through OCFS2; mx2 (still Primary, unmounted) rewrites the device's last
    # 4 KiB with a marker (free space of the small volume): both sides now have changes.
    vm["mx1"].run(f"echo mx1-side > {MOUNT}/split-brain-mx1 && sync", check=True)
    vm["mx2"].run(
        "dev=/dev/drbd0; n=$(($(blockdev --getsize64 $dev) / 4096 - 1)); "
        "head -c 4096 /dev/zero | tr '\\0' 'B' | sed 's/^B\\{8\\}/MX2-SIDE/' "
        "| dd of=$dev bs=4096 seek=$n count=1 oflag=direct conv=notrunc 2>/dev/null",
        check=True,
    )
    for name in vm.names:
        vm[name].run(f"drbdadm connect {RESOURCE}", check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [vm.rets(n, [["drbd.cstate", [RESOURCE]]])[0] for n in vm.names]
        if states == ["StandAlone", "StandAlone"]:
            return
        time.sleep(2)
    raise AssertionError(f"no split brain: cstate {states}")


def _mx2_marker(vm):
    return (
        vm["mx2"]
        .run(
            "dev=/dev/drbd0; n=$(($(blockdev --getsize64 $dev) / 4096 - 1)); "
            "dd if=$dev bs=4096 skip=$n count=1 iflag=direct 2>/dev/null | head -c 8",
            check=True,
        )
        .stdout
    )


def test_split_brain_is_detected_reported_and_nothing_discarded(vm, storage_applied):
    _force_split_brain(vm)
    for name in vm.names:
        sb = vm.rets(name, [["drbd.split_brain", [RESOURCE]]])[0]
        assert sb["split_brain"] is True, (name, sb)
    rets = vm.apply_both()
    for name, ret in rets.items():
        failed = failed_states(ret)
        key = next(k for k in failed if "split-brain-detected" in k)
        assert "split brain" in failed[key]["comment"], failed[key]
        event = next(v for k, v in ret.items() if "split-brain-event" in k)
        assert event["comment"] == "Event fired" and event["result"] is True, event
        assert SB_EVENT in vm.events(name), name
        # nothing was promoted, demoted, reconnected or discarded
        assert not changed_states({k: v for k, v in ret.items() if "split-brain-event" not in k})
        assert vm.rets(name, [["drbd.cstate", [RESOURCE]]]) == ["StandAlone"]
    # both sides still hold their own writes
    assert vm["mx1"].run(f"cat {MOUNT}/split-brain-mx1", check=True).stdout == "mx1-side\n"
    assert _mx2_marker(vm) == "MX2-SIDE"


def test_split_brain_resolved_only_when_pillar_names_the_victim(vm, storage_applied):
    pillar = {"storage": {"drbd": {"split_brain_victim": "mx2"}}}
    rets = vm.apply_both(pillar=pillar)
    for name, ret in rets.items():
        assert not failed_states(ret), (name, failed_states(ret))
    for name in vm.names:
        assert role(vm, name) == {"local": "Primary", "peer": "Primary"}, name
        assert vm.rets(name, [["drbd.is_synced", [RESOURCE]]]) == [True]
    # mx2's change was discarded (pillar said so), mx1's reached mx2
    assert _mx2_marker(vm) != "MX2-SIDE"
    assert vm["mx2"].run(f"cat {MOUNT}/split-brain-mx1", check=True).stdout == "mx1-side\n"
    again = vm.apply_both(pillar=pillar)
    for name, ret in again.items():
        assert not failed_states(ret) and not changed_states(ret), (name, changed_states(ret))
