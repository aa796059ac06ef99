"""
The vm runner's parts that need no guest (lab/vm/runner.py; tests/vm boots the real ones):
the qemu command line, and the control channel against a stand-in for guest/mc-agent.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab" / "vm"))

import runner  # noqa: E402


def _guest(tmp_path: Path, name: str = "mx1") -> runner.Guest:
    image = tmp_path / "image"
    image.mkdir(exist_ok=True)
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    (workdir / f"{name}.qcow2").touch()  # an existing overlay: qemu-img is not needed
    return runner.Guest(
        name=name,
        ip=runner.NODES[name],
        index=1,
        workdir=workdir,
        image=image,
        udp_own=40001,
        udp_peer=40002,
        shared_dir=tmp_path / "shared",
        hosts="mx1:10.99.0.11,mx2:10.99.0.12",
    )


def test_qemu_argv(tmp_path):
    guest = _guest(tmp_path)
    argv = guest.qemu_argv()
    assert argv[0] == "qemu-system-x86_64"
    assert f"tcg,tb-size={runner.TB_SIZE}" in argv
    assert "mc.hostname=mx1 mc.ip=10.99.0.11/24" in argv[argv.index("-append") + 1]
    assert "socket,id=n0,udp=127.0.0.1:40002,localaddr=127.0.0.1:40001" in argv
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:99:00:01" in argv
    assert f"socket,id=ctl,path={guest.ctl_path},server=on,wait=off" in argv
    assert any(a.startswith(f"local,path={runner.REPO},mount_tag=repo,") for a in argv)
    assert "readonly=on" in next(a for a in argv if "mount_tag=repo" in a)
    drbd = guest.workdir / "mx1.drbd.img"
    assert drbd.stat().st_size == runner.DRBD_DISK_MB * 1024 * 1024
    assert f"file={drbd},if=virtio,format=raw,cache=writeback" in argv


class FakeAgent:
    """guest/mc-agent's protocol on the unix socket qemu would create: JSON lines, by id."""

    def __init__(self, path: Path):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.requests: list[dict] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rwb") as fh:
            for line in fh:
                req = json.loads(line)
                self.requests.append(req)
                if req["op"] == "ping":
                    reply = {"id": req["id"], "ok": True}
                elif req.get("sh") == "hang":
                    continue  # never answers: the guest dies first
                else:
                    stdin = base64.b64decode(req.get("stdin", "")).decode()
                    cmd = req.get("sh") or " ".join(req["argv"])
                    rc = 0 if cmd != "false" else 1
                    reply = {"id": req["id"], "rc": rc, "stdout": cmd + stdin, "stderr": ""}
                fh.write((json.dumps(reply) + "\n").encode())
                fh.flush()


@pytest.fixture
def booted(tmp_path):
    guest = _guest(tmp_path)
    agent = FakeAgent(guest.ctl_path)
    guest.proc = subprocess.Popen(["sleep", "60"])  # stands in for qemu
    guest._t_start = time.monotonic()
    assert guest.wait_ready(timeout=10) < 10
    yield guest, agent
    guest.kill()


def test_commands_over_the_control_channel(booted):
    guest, agent = booted
    res = guest.run("echo hi", timeout=5)
    assert (res.ok, res.rc, res.stdout, res.cmd) == (True, 0, "echo hi", "echo hi")
    assert agent.requests[-1]["timeout"] == 5
    assert guest.run(["cat"], stdin="in").stdout == "catin"
    with pytest.raises(runner.GuestCommandError, match="rc=1"):
        guest.run("false", check=True)


def test_a_dying_guest_fails_what_waits_and_what_follows(booted):
    guest, _agent = booted
    killer = threading.Timer(0.3, guest.kill)
    killer.start()
    with pytest.raises(ConnectionError, match="channel closed"):
        guest.run("hang", timeout=30)
    # the hang's reader may see the channel close before kill() has dropped it (a busy
    # machine): what follows is asked once kill() is done
    killer.join(30)
    assert not guest.alive()
    with pytest.raises(ConnectionError, match="not connected"):
        guest.run("echo hi")
