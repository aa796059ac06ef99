"""Every public function of the drbd and o2cb modules, on the real guests.

Runs on the converged pair (test_10_storage). The read functions are in the short vm tier
(one batch per guest, taken for test_10 anyway); those that write (o2cb's config on a
scratch file, mkfs on a loop device, DRBD's lifecycle on mx2) are in the long one
(``vmfull``, about 5 minutes of TCG). Functions that change the live cluster run on mx2
inside a window where its OCFS2 mount is taken away; the storage role is applied on mx2
afterwards and must bring it back to dual primary and mounted.
"""

from __future__ import annotations

import pytest
from vmtools import CLUSTER, MOUNT, RESOURCE, changed_states, failed_states, ok

#: every public function of each module, and the test below that calls it
COVERED = {
    "drbd": {
        "version",
        "config",
        "resources",
        "status",
        "role",
        "cstate",
        "dstate",
        "has_metadata",
        "createmd",
        "up",
        "down",
        "adjust",
        "primary",
        "secondary",
        "connect",
        "disconnect",
        "is_synced",
        "wait_sync",
        "check_config",
        "split_brain",
    },
    "o2cb": {
        "list_clusters",
        "cluster_info",
        "list_nodes",
        "cluster_status",
        "add_cluster",
        "remove_cluster",
        "add_node",
        "remove_node",
        "heartbeat_mode",
        "register_cluster",
        "unregister_cluster",
        "mounted",
        "fs_info",
        "mkfs",
        "timeouts",
        "set_timeouts",
    },
}


@pytest.mark.parametrize("module", sorted(COVERED))
def test_every_public_function_is_covered(reads, module):
    listed = ok(reads, "mx1", f"functions_{module}")
    public = {f.split(".", 1)[1] for f in listed}
    assert public, f"{module} module not loaded in the guest"
    assert public <= COVERED[module], f"not exercised here: {sorted(public - COVERED[module])}"


def test_drbd_read_functions(vm, reads):
    for name in vm.names:
        version = ok(reads, name, "drbd_version")
        config = ok(reads, name, "drbd_config")
        assert "8.4." in str(version.get("kernel")), version
        assert str(version.get("utils", "")).startswith("9."), version
        assert sorted(config[RESOURCE]["hosts"]) == ["mx1", "mx2"], config
        assert config[RESOURCE]["options"]["net"]["protocol"] == "C", config
        assert ok(reads, name, "drbd_resources") == [RESOURCE]
        assert ok(reads, name, "drbd_role") == {"local": "Primary", "peer": "Primary"}
        assert ok(reads, name, "drbd_cstate") == "Connected"
        assert ok(reads, name, "drbd_dstate") == {"local": "UpToDate", "peer": "UpToDate"}
        assert ok(reads, name, "drbd_has_metadata") is True
        assert ok(reads, name, "drbd_is_synced") is True
        assert ok(reads, name, "drbd_wait_sync") is True
        assert RESOURCE in ok(reads, name, "drbd_status")
        sb = ok(reads, name, "drbd_split_brain")
        assert sb["split_brain"] is False and sb["connection"] == "Connected", sb
        assert ok(reads, name, "drbd_check_config") == {
            "valid": True,
            "resources": [RESOURCE],
            "error": None,
        }
    mx1 = reads["mx1"]
    bad = mx1["drbd_check_config_bad"]
    assert bad["ok"] and bad["ret"]["valid"] is False and bad["ret"]["error"], bad
    # errors name what is wrong, and existing metadata is never overwritten
    role_err, createmd = mx1["drbd_role_nosuch"], mx1["drbd_createmd"]
    assert not role_err["ok"] and "nosuch" in role_err["error"], role_err
    assert not createmd["ok"] and RESOURCE in createmd["error"], createmd
    assert ok(reads, "mx1", "drbd_is_synced_after") is True


def test_o2cb_read_functions(vm, reads):
    nodes = {
        "mx1": {"number": 1, "ip_address": "10.99.0.11", "ip_port": 7777},
        "mx2": {"number": 2, "ip_address": "10.99.0.12", "ip_port": 7777},
    }
    for name in vm.names:
        assert CLUSTER in ok(reads, name, "o2cb_list_clusters")
        assert ok(reads, name, "o2cb_list_nodes") == nodes
        info = ok(reads, name, "o2cb_cluster_info")
        assert info["nodes"] == nodes and info["heartbeat_mode"] == "local", info
        assert ok(reads, name, "o2cb_cluster_status") == {"name": CLUSTER, "online": True}
        fs = ok(reads, name, "o2cb_fs_info")
        assert (fs["type"], fs["label"], fs["cluster"]) == ("ocfs2", "vmail", CLUSTER), fs
        assert ok(reads, name, "o2cb_timeouts") == {
            "dead_threshold": 31,
            "idle_timeout_ms": 30000,
            "keepalive_delay_ms": 2000,
            "reconnect_delay_ms": 2000,
        }
    missing, err = reads["mx1"]["o2cb_cluster_info_nosuch"], reads["mx1"]["o2cb_list_nodes_nosuch"]
    assert missing["ok"] and missing["ret"] is None, missing
    assert not err["ok"] and "nosuch" in err["error"], err


@pytest.mark.vmfull
def test_o2cb_config_functions_on_a_scratch_file(vm, storage_applied):
    g = "mx1"
    cf = {"config_file": "/tmp/scratch-cluster.conf"}
    path = {"path": "/tmp/scratch-o2cb"}
    vm[g].run(
        "rm -f /tmp/scratch-cluster.conf; printf 'O2CB_ENABLED=true\\n' > /tmp/scratch-o2cb",
        check=True,
    )
    out = vm.calls(
        g,
        [
            ["o2cb.list_clusters", [], cf],
            ["o2cb.add_cluster", ["scratch"], cf],
            ["o2cb.add_cluster", ["scratch"], cf],
            ["o2cb.add_node", ["scratch", "n7", "10.0.0.7"], {"number": 7, **cf}],
            ["o2cb.add_node", ["scratch", "n3", "10.0.0.3"], {"port": 7778, "number": 3, **cf}],
            ["o2cb.list_nodes", ["scratch"], cf],
            ["o2cb.heartbeat_mode", ["scratch"], cf],
            ["o2cb.heartbeat_mode", ["scratch", "global"], cf],
            ["o2cb.cluster_info", ["scratch"], cf],
            ["o2cb.remove_node", ["scratch", "n7"], cf],
            ["o2cb.list_nodes", ["scratch"], cf],
            ["o2cb.remove_cluster", ["scratch"], cf],
            ["o2cb.list_clusters", [], cf],
            ["o2cb.list_nodes", [CLUSTER]],
            ["o2cb.set_timeouts", [], {"dead_threshold": 11, "idle_timeout_ms": 10000, **path}],
            ["o2cb.set_timeouts", [], {"dead_threshold": 11, **path}],
            ["o2cb.timeouts", [], path],
        ],
    )
    rets = [o["ret"] for o in out]
    assert rets[0] == [] and out[1]["ok"], out[:2]
    assert not out[2]["ok"] and "scratch" in out[2]["error"], out[2]
    assert out[3]["ok"] and out[4]["ok"], out[3:5]
    assert rets[5] == {
        "n3": {"number": 3, "ip_address": "10.0.0.3", "ip_port": 7778},
        "n7": {"number": 7, "ip_address": "10.0.0.7", "ip_port": 7777},
    }
    assert rets[6] == "local" and rets[7] == "global"
    assert rets[8]["heartbeat_mode"] == "global"
    assert out[9]["ok"] and list(rets[10]) == ["n3"]
    assert out[11]["ok"] and rets[12] == []
    # the live cluster.conf was not touched
    assert sorted(rets[13]) == ["mx1", "mx2"]
    assert rets[14] == {
        "dead_threshold": {"old": 31, "new": 11},
        "idle_timeout_ms": {"old": 30000, "new": 10000},
    }
    assert rets[15] == {} and rets[16]["dead_threshold"] == 11
    assert "O2CB_ENABLED=true" in vm[g].run("cat /tmp/scratch-o2cb").stdout


@pytest.mark.vmfull
def test_o2cb_mkfs_on_a_loop_device(vm, storage_applied):
    g = vm["mx1"]
    loop = g.run(
        "modprobe loop && truncate -s 64M /root/scratch.img && losetup -f --show /root/scratch.img",
        check=True,
    ).stdout.strip()
    try:
        args = [loop, CLUSTER, "scratch", 2]
        before, made, fs, again = vm.calls(
            "mx1",
            [
                ["o2cb.fs_info", [loop]],
                ["o2cb.mkfs", args, {"journal_size": "4M"}],
                ["o2cb.fs_info", [loop]],
                ["o2cb.mkfs", args, {"journal_size": "4M"}],
            ],
        )
        assert before["ok"] and before["ret"] is None, before
        assert made["ok"] and made["ret"] is True, made
        assert (fs["ret"]["type"], fs["ret"]["label"]) == ("ocfs2", "scratch"), fs
        assert not again["ok"] and "refusing" in again["error"], again
    finally:
        g.run(f"losetup -d {loop}; rm -f /root/scratch.img")


@pytest.mark.vmfull
def test_lifecycle_functions_on_mx2_then_role_restores(vm, storage_applied):
    """secondary/disconnect/connect/adjust/down/up/primary, unregister/register on mx2."""
    vm["mx2"].run(f"umount {MOUNT}", check=True, timeout=120)
    try:
        r = [RESOURCE]
        out = vm.calls(
            "mx2",
            [
                ["drbd.secondary", r],
                ["drbd.role", r],
                ["drbd.disconnect", r],
                ["drbd.cstate", r],
                ["drbd.split_brain", r],
                ["drbd.connect", r],
                ["__wait__", "drbd.cstate", r, {}, "Connected", 90],
                ["drbd.adjust", r],
                ["drbd.down", r],
                ["drbd.status", r],
                ["drbd.role", r],
                ["drbd.cstate", r],
                ["drbd.dstate", r],
                ["drbd.has_metadata", r],
                ["drbd.up", r],
                ["drbd.wait_sync", r, {"timeout": 120}],
                ["drbd.primary", r],
                ["drbd.role", r],
                ["o2cb.unregister_cluster", [CLUSTER]],
                ["o2cb.cluster_status", [CLUSTER]],
                ["o2cb.register_cluster", [CLUSTER]],
                ["o2cb.cluster_status", [CLUSTER]],
            ],
        )
        bad = [o for o in out if not o["ok"]]
        assert not bad, bad
        rets = [o["ret"] for o in out]
        assert rets[0] is True and rets[1] == {"local": "Secondary", "peer": "Primary"}
        assert rets[2] is True and rets[3] == "StandAlone"
        assert rets[4]["split_brain"] is False
        assert rets[5] is True and rets[6] == "Connected" and rets[7] is True
        assert rets[8] is True and rets[9][RESOURCE]["up"] is False
        assert rets[10] == {"local": "Unconfigured", "peer": None}
        assert rets[11] == "Unconfigured"
        assert rets[12]["local"] in ("Consistent", "UpToDate"), rets[12]
        assert rets[13] is True
        assert rets[14] is True and rets[15] is True
        assert rets[16] is True and rets[17]["local"] == "Primary"
        assert rets[18] is True and rets[19]["online"] is False
        assert rets[20] is True and rets[21]["online"] is True
    finally:
        ret = vm.apply("mx2")
    assert not failed_states(ret), failed_states(ret)
    changed = changed_states(ret)
    assert list(changed) == ["mount_|-storage-mount-volume-mount-mounted_|-/var/vmail_|-mounted"]
    assert vm.rets("mx2", [["drbd.role", [RESOURCE]]]) == [{"local": "Primary", "peer": "Primary"}]
    token = vm["mx1"].run(f"date +%s%N | tee {MOUNT}/after-restore", check=True).stdout
    assert vm["mx2"].run(f"cat {MOUNT}/after-restore", check=True).stdout == token
