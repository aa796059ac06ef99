"""The drbd_ocfs2 store at boot (salt/storage/boot, docs/seed.md), through Salt's loader (no
daemons): a mail node of the drbd_ocfs2 backend gets the unit mailcluster-store, enabled and
started only after the store is mounted, and a script that promotes only with the peer
connected; postfix, dovecot and both movers are ordered after it by mail:vmail's guard; the
shared_path backend gets none of it; storage.clean stops and removes it. The unit's real
behaviour (a guest powered off and booted) is the seed tier's (tests/seed)."""

import shutil
import subprocess

import pytest
from test_roles_support import pillar_copy, run_node
from test_roles_validation import DRBD

UNIT = "/etc/systemd/system/mailcluster-store.service"
SCRIPT = "/usr/local/sbin/mailcluster-store"
RUNNING = "storage-boot-unit-service-running"


@pytest.fixture(scope="module")
def drbd_mx2(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("boot")
    drbd = "drbd: {boot_peer_wait: 45, resource: rmail, device: /dev/drbd3}"
    # DRBD's own drbd mapping (the secret) gives way to this one: keep the secret
    drbd = drbd.replace("{", "{shared_secret: functional-test-secret, ", 1)
    extra = DRBD.replace(", drbd: {shared_secret: functional-test-secret}", "").rstrip()[:-1]
    extra += f", {drbd}}}\n"
    calls = [["state.show_highstate"], ["templates"], ["state.show_sls", "storage.clean"]]
    return run_node(tmp, "mx2", calls, pillar_copy(tmp, extra), grains={"init": "systemd"})


@pytest.fixture(scope="module")
def drbd_no_systemd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("boot-sysv")
    calls = [["state.show_highstate"], ["state.show_sls", "storage.clean"]]
    return run_node(tmp, "mx2", calls, pillar_copy(tmp, DRBD), grains={"init": "sysvinit"})


def _arg(body, module, key):
    for item in body.get(module, []):
        if isinstance(item, dict) and key in item:
            return item[key]
    return None


def test_unit_starts_only_after_the_store_is_mounted(drbd_mx2):
    high, _rendered, _clean = drbd_mx2
    assert isinstance(high, dict), high
    body = high[RUNNING]
    assert _arg(body, "service", "enable") is True
    assert {"mount": "storage-mount-volume-mount-mounted"} in _arg(body, "service", "require")
    # never restarted by a change: a restart would unmount the store under the mail services
    assert _arg(body, "service", "watch") is None


def test_script_waits_for_the_peer_then_promotes_and_mounts(drbd_mx2):
    _high, rendered, _clean = drbd_mx2
    script = rendered[SCRIPT]["text"]
    assert script.startswith("#!/bin/sh\n")
    assert "res=rmail\n" in script and "dev=/dev/drbd3\n" in script
    assert "mnt=/var/vmail\n" in script and "peer_wait=45\n" in script
    # _netdev is fstab's word: not given to mount(8) by hand
    assert "opts=noatime\n" in script
    start = script.split("start() {", 1)[1].split("\n}\n", 1)[0]
    steps = [
        "o2cb cluster-status",
        "drbdadm adjust",
        "drbdadm cstate",
        "drbdadm primary",
        "mount -t ocfs2",
    ]
    at = [start.index(s) for s in steps]
    assert at == sorted(at), at
    if shutil.which("sh"):
        check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def test_unit_file_times_out_instead_of_hanging(drbd_mx2):
    _high, rendered, _clean = drbd_mx2
    unit = rendered[UNIT]["text"]
    assert f"ExecStart={SCRIPT} start" in unit and f"ExecStop={SCRIPT} stop" in unit
    assert "After=network-online.target o2cb.service" in unit
    # the peer wait + the sync timeout (default 900) + 120 s for the rest
    assert "TimeoutStartSec=1065" in unit
    assert "WantedBy=multi-user.target" in unit


def test_mail_services_and_movers_wait_for_the_unit(drbd_mx2):
    high, _rendered, _clean = drbd_mx2
    for unit in ("dovecot.service", "postfix@.service", "heartbeat.service", "keepalived.service"):
        body = high[f"mail-vmail-guard-{unit}-file-managed"]
        contents = _arg(body, "file", "contents")
        assert "After=mailcluster-store.service" in contents, (unit, contents)
        assert "ConditionPathIsMountPoint=/var/vmail" in contents, (unit, contents)


def test_clean_stops_and_removes_the_unit(drbd_mx2):
    _high, _rendered, clean = drbd_mx2
    assert isinstance(clean, dict), clean
    dead = clean["storage-boot-clean-unit-service-dead"]
    assert _arg(dead, "service", "enable") is False
    assert set(_arg(clean["storage-boot-clean-files-file-absent"], "file", "names")) == {
        UNIT,
        SCRIPT,
    }


def test_without_systemd_only_the_script(drbd_no_systemd):
    high, clean = drbd_no_systemd
    assert isinstance(high, dict) and isinstance(clean, dict), (high, clean)
    assert sorted(k for k in high if k.startswith("storage-boot-")) == [
        "storage-boot-script-file-managed"
    ]
    assert sorted(k for k in clean if k.startswith("storage-boot-")) == [
        "storage-boot-clean-files-file-absent"
    ]


def test_shared_path_backend_has_no_boot_unit(tmp_path):
    (high,) = run_node(tmp_path, "mx1", [["state.show_highstate"]], pillar_copy(tmp_path, None))
    assert isinstance(high, dict), high
    assert not [k for k in high if k.startswith("storage-boot-")]
