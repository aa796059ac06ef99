"""Short vm tier: the storage role converges a bare pair to DRBD dual primary + OCFS2."""

from __future__ import annotations

import uuid

import pytest
from vmtools import DEVICE, MOUNT, RESOURCE, at_once, changed_states, failed_states, ok


def test_first_apply_converges(vm, storage_applied):
    for name, ret in storage_applied.items():
        assert not failed_states(ret), f"{name}: {failed_states(ret)}"
        assert changed_states(ret), f"{name}: a bare guest must report changes"
    # the initial promotion and the format happen once, on the initial primary only
    mx1, mx2 = storage_applied["mx1"], storage_applied["mx2"]
    assert any("drbd_|-storage-drbd-service-initial" in k for k in mx1)
    assert not any("drbd_|-storage-drbd-service-initial" in k for k in mx2)
    assert any("o2cb_|-storage-mount-volume-o2cb-formatted" in k for k in mx1)
    assert not any("formatted" in k for k in mx2)


def test_dual_primary_uptodate(vm, reads):
    for name in vm.names:
        status = ok(reads, name, "drbd_status_r0")[RESOURCE]
        assert status["role"] == "Primary", status
        assert [v["disk"] for v in status["volumes"]] == ["UpToDate"], status
        (peer,) = status["peers"]
        assert peer["connection"] == "Connected", status
        assert peer["role"] == "Primary", status
        assert [v["peer_disk"] for v in peer["volumes"]] == ["UpToDate"], status
        # allow-two-primaries is in the final resource file (written after the initial sync)
        res = vm[name].run(f"drbdsetup show {RESOURCE}", check=True)
        assert "allow-two-primaries" in res.stdout


def test_ocfs2_mounted_on_both(vm, reads):
    for name in vm.names:
        res = vm[name].run(f"findmnt -n -o SOURCE,FSTYPE {MOUNT}", check=True)
        assert res.stdout.split() == [DEVICE, "ocfs2"], res.stdout
        assert ok(reads, name, "o2cb_cluster_status")["online"] is True
        mounted = ok(reads, name, "o2cb_mounted")
        assert sorted(mounted[DEVICE]["nodes"]) == ["mx1", "mx2"], mounted


def test_file_written_on_one_read_on_other(vm, storage_applied):
    for writer, reader in (("mx1", "mx2"), ("mx2", "mx1")):
        token = uuid.uuid4().hex
        path = f"{MOUNT}/from-{writer}.txt"
        vm[writer].run(f"echo {token} > {path} && sync", check=True)
        res = vm[reader].run(f"cat {path}", check=True)
        assert res.stdout.strip() == token


@pytest.fixture(scope="module")
def second_round(vm, storage_applied):
    """The second round, at once on both guests: a real apply on mx1 (the initial primary,
    whose one-time promotion and format must not run again) and ``test=True`` on mx2 (no
    change predicted there means a real apply would make none either). One round of TCG
    instead of two (each apply takes 2-4 minutes)."""
    return at_once(
        {
            "mx1": lambda: vm.apply("mx1", pillar=None, sls="storage"),
            "mx2": lambda: vm.apply("mx2", pillar=None, sls="storage test=True"),
        }
    )


def test_second_apply_reports_no_changes(second_round):
    ret = second_round["mx1"]
    assert not failed_states(ret), f"mx1: {failed_states(ret)}"
    assert not changed_states(ret), f"mx1: {changed_states(ret)}"


def test_test_mode_reports_no_changes(second_round):
    ret = second_round["mx2"]
    assert not failed_states(ret), failed_states(ret)
    assert all(v["result"] is True for v in ret.values()), ret
    assert not changed_states(ret)


@pytest.mark.vmfull
def test_shared_path_backend(vm, storage_applied):
    """Backend shared_path on the 9p dir both guests share (/srv/shared, as in the lab).

    In the long tier only (about 4 minutes of TCG): the default run already converges this
    backend for real on the nspawn lab's mail pair, whose store is the same kind of shared
    directory; what this adds is the switch from drbd_ocfs2 on one guest."""
    pillar = {"storage": {"backend": "shared_path", "mount_point": "/var/vmail-shared"}}
    first = vm.apply_both(pillar=pillar)
    for name, ret in first.items():
        assert not failed_states(ret), f"{name}: {failed_states(ret)}"
    token = uuid.uuid4().hex
    vm["mx1"].run(f"echo {token} > /var/vmail-shared/probe", check=True)
    assert vm["mx2"].run("cat /var/vmail-shared/probe", check=True).stdout.strip() == token
    again = vm.apply("mx1", pillar=pillar)
    assert not failed_states(again) and not changed_states(again), again
    cleaned = vm.apply("mx2", pillar=pillar, sls="storage.clean")
    assert not failed_states(cleaned), failed_states(cleaned)
    assert vm["mx2"].run("findmnt /var/vmail-shared").rc != 0
    # the OCFS2 store of the drbd_ocfs2 backend is untouched
    assert vm["mx2"].run(f"findmnt -n -o FSTYPE {MOUNT}", check=True).stdout.strip() == "ocfs2"
