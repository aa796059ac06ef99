"""The lab itself: real nspawn nodes with systemd, a salt-master and minions, a real network."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from mc_wait import seconds_until as wait_until
from mclab import util
from mclab.lab import DEFAULT_NODES, Lab

pytestmark = pytest.mark.lab


def pings(lab, src: str, target: str) -> bool:
    return lab.run(src, "ping", "-c1", "-W1", target, timeout=10).returncode == 0


def test_every_minion_answers_test_ping(lab):
    assert lab.answering(timeout=10) == set(DEFAULT_NODES)


def test_nodes_are_debian12_with_systemd_as_pid1(lab):
    for node in DEFAULT_NODES:
        out = lab.run(
            node,
            "sh",
            "-c",
            "hostname; . /etc/os-release; echo $VERSION_CODENAME; "
            "cat /proc/1/comm; ip -4 -o addr show eth0",
        ).stdout.split("\n")
        assert out[0] == node
        assert out[1] == "bookworm"
        assert out[2] == "systemd"
        assert f"inet {lab.ip(node)}/24" in out[3]


def test_nodes_reach_each_other_by_name_and_ip(lab):
    names = list(DEFAULT_NODES)
    for src in names:
        targets = " ".join(t for dst in names if dst != src for t in (dst, lab.ip(dst)))
        script = f"for t in {targets}; do ping -c1 -W1 $t >/dev/null || echo FAIL $t; done"
        out = lab.run(src, "sh", "-c", script, timeout=60).stdout
        assert out.strip() == "", f"{src} cannot reach: {out}"


def test_host_reaches_every_node(lab):
    for node in DEFAULT_NODES:
        assert (
            subprocess.run(["ping", "-c1", "-W1", lab.ip(node)], capture_output=True).returncode
            == 0
        )


def test_repo_and_venv_are_mounted_live(lab):
    marker = util.REPO / "tests" / f".lab-live-{os.getpid()}"
    marker.write_text("live\n")
    try:
        out = lab.run("mx1", "cat", f"/srv/mailcluster/tests/{marker.name}").stdout
        assert out == "live\n"
        assert lab.run("mx1", "salt-call", "--version").returncode == 0
    finally:
        marker.unlink()


def test_mail_nodes_share_a_directory(lab):
    lab.run("mx1", "sh", "-c", "echo from-mx1 > /srv/shared/.lab-test")
    try:
        assert lab.run("mx2", "cat", "/srv/shared/.lab-test").stdout == "from-mx1\n"
    finally:
        lab.run("mx1", "rm", "-f", "/srv/shared/.lab-test")


def test_kill_makes_a_node_vanish_from_network_and_salt(lab):
    assert pings(lab, "ns1", "ns2")
    start = time.monotonic()
    try:
        proc = lab.cli("kill", "ns2")
        assert proc.returncode == 0, proc.stderr
        # the kernel tears the dead node's network namespace down asynchronously (slower with
        # its nftables table): the address answers for a moment after the kill returns
        wait_until(lambda: not pings(lab, "ns1", lab.ip("ns2")), 5)
        gone_from_net = time.monotonic() - start
        present = lab.salt_run("manage.present", "--out=json").stdout
        gone_from_salt = time.monotonic() - start
        assert '"ns2"' not in present and '"ns1"' in present
        # salt-run itself needs about 5-8 s to start on this machine.
        assert gone_from_net < 5 and gone_from_salt < 15, (gone_from_net, gone_from_salt)
        assert "ns2" not in lab.answering(timeout=2)
        status_line = lab.cli("status").stdout.split("ns2", 1)[1].split("\n", 1)[0]
        assert "stopped" in status_line and "down" in status_line
    finally:
        lab.ensure_running("ns2")
    assert pings(lab, "ns1", "ns2")


@pytest.mark.labfull
def test_stop_and_start_a_node(lab):
    assert lab.cli("stop", "ns2").returncode == 0
    assert not pings(lab, "ns1", lab.ip("ns2"))
    assert lab.cli("start", "ns2").returncode == 0
    lab.ensure_running("ns2")
    assert pings(lab, "ns1", "ns2")


def test_partition_cuts_exactly_that_link(lab):
    """The lab tool's cut, on the DNS pair: no heartbeat there, so a converged lab is left as
    it was (the mail pair's own partitions: tests/lab/test_selfheal_failover.py)."""
    assert lab.cli("partition", "ns1", "ns2").returncode == 0
    try:
        wait_until(lambda: not pings(lab, "ns1", lab.ip("ns2")), 5)
        assert not pings(lab, "ns2", lab.ip("ns1"))
        assert pings(lab, "ns1", lab.ip("mx1")) and pings(lab, "ns2", lab.ip("mx1"))
        assert {"ns1", "ns2"} <= lab.answering()
        assert "partition: ns1 <-/-> ns2" in lab.cli("status").stdout
    finally:
        assert lab.cli("heal").returncode == 0
    wait_until(lambda: pings(lab, "ns1", lab.ip("ns2")), 5)


def test_bad_input_gets_a_clear_error(lab):
    proc = lab.cli("kill", "mx9")
    assert proc.returncode == 1 and "unknown node 'mx9'" in proc.stderr
    proc = lab.cli("up")
    assert proc.returncode == 1 and "already up" in proc.stderr
    proc = lab.cli("run", "mx1")
    assert proc.returncode == 1 and "usage" in proc.stderr
    proc = lab.cli("partition", "mx1", "nope")
    assert proc.returncode == 1 and "unknown node 'nope'" in proc.stderr


def test_up_with_an_unknown_node_leaves_nothing():
    env = dict(os.environ, MC_LAB="mcbad", MC_LAB_SUBNET="10.91.0")
    proc = subprocess.run(
        [str(util.REPO / "lab/lab"), "up", "--nodes", "salt,mx7"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1 and "unknown node name(s): mx7" in proc.stderr
    assert not (util.STATE_ROOT / "labs" / "mcbad").exists()
    assert not Path("/run/netns/mcbad-sw").exists()


def leftovers(instance: Lab) -> list[str]:
    found = []
    if Path(f"/run/netns/{instance.netns}").exists():
        found.append(f"netns {instance.netns}")
    if Path(f"/sys/class/net/{instance.host_if}").exists():
        found.append(f"interface {instance.host_if}")
    for hierarchy in ("systemd", "unified"):
        if (Path("/sys/fs/cgroup") / hierarchy / instance.name).exists():
            found.append(f"cgroup {hierarchy}/{instance.name}")
    if str(instance.dir) in Path("/proc/mounts").read_text():
        found.append("mounts under " + str(instance.dir))
    if instance.dir.exists():
        found.append(str(instance.dir))
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "root").startswith(str(instance.dir)):
                    found.append(f"process {proc.name}")
            except OSError:
                pass
    return found


@pytest.mark.labfull
def test_down_leaves_nothing_behind():
    """A second, small instance (so the shared lab stays up): up, then down, then look."""
    env = dict(os.environ, MC_LAB="mcdown", MC_LAB_SUBNET="10.90.0")
    cli = [str(util.REPO / "lab/lab")]
    instance = Lab("mcdown", "10.90.0")
    up = subprocess.run(
        [*cli, "up", "--nodes", "salt,mx1"], capture_output=True, text=True, env=env, timeout=600
    )
    try:
        assert up.returncode == 0, up.stderr
        assert instance.is_running(instance.node("mx1"))
    finally:
        start = time.monotonic()
        down = subprocess.run([*cli, "down"], capture_output=True, text=True, env=env, timeout=120)
        took = time.monotonic() - start
    assert down.returncode == 0, down.stderr
    assert leftovers(instance) == []
    assert took < 20, f"down took {took:.1f} s"
