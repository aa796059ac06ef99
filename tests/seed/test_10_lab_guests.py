"""Issue 11 item 1: the mail pair as qemu guests in the lab network, driven like the nspawn
nodes by `lab/lab status|run|kill|stop|start|partition|heal`."""

from __future__ import annotations

import json
import subprocess
import uuid

from mc_wait import wait_for

GUESTS = ("mx1", "mx2")


def status(seed_lab) -> dict:
    proc = seed_lab.cli("status", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {row["node"]: row for row in json.loads(proc.stdout)["nodes"]}


def host_ping(ip: str) -> bool:
    proc = subprocess.run(["ping", "-c", "1", "-W", "1", ip], capture_output=True, check=False)
    return proc.returncode == 0


def guest_ping(seed_lab, node: str, ip: str) -> bool:
    return seed_lab.run(node, "ping", "-c", "1", "-W", "2", ip, timeout=30).returncode == 0


def test_guests_are_qemu_with_their_own_kernel_and_minions_on_the_master(seed_lab):
    rows = status(seed_lab)
    for name, row in rows.items():
        assert row["running"], row
        assert row["minion"] == "up", row
        assert row["kind"] == ("qemu" if name in GUESTS else "nspawn"), row
    host_kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    for name in GUESTS:
        kernel = seed_lab.run(name, "uname", "-r").stdout.strip()
        assert kernel and kernel != host_kernel, (name, kernel, host_kernel)
        # the kernel modules the host lacks: DRBD 8.4 and OCFS2 with o2cb's configfs
        loaded = seed_lab.run(name, "sh", "-c", "modprobe drbd && modprobe configfs && "
                              "modprobe ocfs2_stack_o2cb && cat /proc/drbd")  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        assert "version: 8.4" in loaded.stdout, loaded.stdout
        assert seed_lab.run(name, "test", "-b", "/dev/vdb").returncode == 0  # the DRBD disk
        assert seed_lab.run(name, "hostname").stdout.strip() == name


def test_guests_share_the_lab_network(seed_lab):
    for name in GUESTS:
        assert host_ping(seed_lab.ip(name)), name
        for other in ("salt", "ns1", *GUESTS):
            if other != name:
                assert guest_ping(seed_lab, name, seed_lab.ip(other)), (name, other)


def test_partition_and_heal_cut_the_link_between_guests(seed_lab):
    assert seed_lab.cli("partition", "mx1", "mx2").returncode == 0
    try:
        assert not guest_ping(seed_lab, "mx1", seed_lab.ip("mx2"))
        assert not guest_ping(seed_lab, "mx2", seed_lab.ip("mx1"))
        # only that link: both still reach the master
        assert guest_ping(seed_lab, "mx1", seed_lab.ip("salt"))
        assert ["mx1", "mx2"] in json.loads(seed_lab.cli("status", "--json").stdout)["partitions"]
    finally:
        assert seed_lab.cli("heal").returncode == 0
    wait_for(lambda: guest_ping(seed_lab, "mx1", seed_lab.ip("mx2")), 30, what="the healed link")


def test_kill_is_a_power_cut_and_start_boots_with_the_same_disk(seed_lab):
    token = uuid.uuid4().hex
    wrote = seed_lab.run("mx2", "sh", "-c", f"echo {token} > /root/token && sync")
    assert wrote.returncode == 0, wrote.stderr
    assert seed_lab.cli("kill", "mx2").returncode == 0
    assert not status(seed_lab)["mx2"]["running"]
    assert not host_ping(seed_lab.ip("mx2"))
    wait_for(lambda: "mx2" not in seed_lab.answering(), 60, what="mx2's minion to vanish")
    started = seed_lab.cli("start", "mx2", timeout=600)
    assert started.returncode == 0, started.stderr
    # a guest boots in 60-120 s under TCG, its minion answers a minute or more later
    wait_for(lambda: "mx2" in seed_lab.answering(), 600, what="mx2's minion to come back")
    assert seed_lab.run("mx2", "cat", "/root/token").stdout.strip() == token


def test_stop_powers_off_gracefully(seed_lab):
    assert seed_lab.cli("stop", "mx2", timeout=300).returncode == 0
    assert not status(seed_lab)["mx2"]["running"]
    # the clean shutdown left the journal closed: the next boot needs no fsck recovery
    assert seed_lab.cli("start", "mx2", timeout=600).returncode == 0
    log = seed_lab.run("mx2", "journalctl", "-b", "-o", "cat", "--no-pager").stdout
    assert "recovering journal" not in log
    wait_for(lambda: "mx2" in seed_lab.answering(), 600, what="mx2's minion to come back")


def test_bad_node_and_bad_storage_are_refused(seed_lab):
    proc = seed_lab.cli("run", "mx9", "--", "true")
    assert proc.returncode != 0 and "unknown node 'mx9'" in proc.stderr
    env_lab = seed_lab.cli("up", "--storage", "nfs")
    assert env_lab.returncode != 0
    assert "--storage nfs" in env_lab.stderr or "already up" in env_lab.stderr
