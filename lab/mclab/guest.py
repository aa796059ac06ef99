"""A lab node that is a qemu guest (issue 11: `lab/lab up --storage drbd`).

The guest has its own kernel (DRBD 8.4, OCFS2) and otherwise looks like an nspawn node: the
same base image and node files (lab/mclab/nodefiles.py), the same name and IP on the lab's
bridge, its minion on the same master. What differs, and lives here:

- its root is a raw ext4 disk made from the node's overlay (base image + guest layer + node
  files) with ``mkfs.ext4 -d``, plus a spare raw disk for DRBD (/dev/vdb); both stay in the
  node's dir until `lab/lab down`, so a killed guest boots again with its disks;
- its network is a tap port of the lab's bridge with the name the node's veth would have, so
  `partition`/`heal` (nft rules on interface names) cut and restore it the same way;
- qemu runs detached (`lab/lab` exits while the guests run); its PID is in ``qemu.pid``;
- commands run through the control agent on a virtio-serial port (lab/vm/channel.py), over
  the one connection a small host process holds for every caller (guest_mux.py): no network
  needed, so a command reaches a guest whose link is cut or whose firewall is closed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import image, util

MEM_MB = int(os.environ.get("MC_LAB_GUEST_MEM", "1536"))
SMP = int(os.environ.get("MC_LAB_GUEST_SMP", "2"))
TB_SIZE = int(os.environ.get("MC_LAB_GUEST_TB_SIZE", "256"))
ROOT_SIZE = os.environ.get("MC_LAB_GUEST_DISK", "6G")
DRBD_DISK_MB = int(os.environ.get("MC_LAB_GUEST_DRBD_MB", "256"))
BOOT_TIMEOUT = float(os.environ.get("MC_LAB_GUEST_BOOT_TIMEOUT", "300"))


class Guest:
    """Paths and lifecycle of one guest node; ``node`` is a ``lab.Node``."""

    def __init__(self, lab, node):
        self.lab = lab
        self.node = node
        self.dir = node.root.parent

    # ----- files -----------------------------------------------------------------------------
    @property
    def disk(self) -> Path:
        return self.dir / "root.img"

    @property
    def drbd_disk(self) -> Path:
        return self.dir / "drbd.img"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def ctl(self) -> Path:
        return self.dir / "ctl.sock"

    @property
    def mux(self) -> Path:
        return self.dir / "mux.sock"

    # ----- build ----------------------------------------------------------------------------
    def prepare(self, base: Path, layer: Path, write_files) -> None:
        """Make the guest's disks: its root from base + layer + node files (``write_files``
        writes them into a root dir), and an empty DRBD disk."""
        top = self.dir
        for sub in ("upper", "work", "root"):
            (top / sub).mkdir(parents=True, exist_ok=True)
        root = self.node.root
        util.run([
            "mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={layer / 'upper'}:{base},upperdir={top / 'upper'},workdir={top / 'work'}",
            root,
        ])  # fmt: skip
        try:
            # the minion keeps Salt's defaults (a process per job): in threads
            # (multiprocessing: False) 50 queued jobs kept its main thread at 100% CPU in
            # GIL contention, and each job took a minute or more
            write_files(root)
            started = time.monotonic()
            util.run(["mkfs.ext4", "-q", "-F", "-L", "mcroot", "-d", root, self.disk, ROOT_SIZE])
            util.info(f"   {self.node.name}: root disk made in {time.monotonic() - started:.0f} s")
        finally:
            image._unmount_under(root)
        with open(self.drbd_disk, "wb") as fh:
            fh.truncate(DRBD_DISK_MB * 1024 * 1024)

    # ----- lifecycle --------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"qemu-system" in cmdline else None

    def alive(self) -> bool:
        return self.pid() is not None

    def argv(self, kernel: Path, initrd: Path) -> list[str]:
        octet = self.node.ip.rsplit(".", 1)[1]
        append = "root=/dev/vda rw console=ttyS0 panic=5 net.ifnames=0 quiet"
        ports = [
            "-chardev", f"socket,id=ctl,path={self.ctl},server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name=mc.ctl",
        ]  # fmt: skip
        return [
            "qemu-system-x86_64", "-name", self.node.name,
            "-accel", f"tcg,tb-size={TB_SIZE},thread=multi", "-machine", "pc",
            "-smp", str(SMP), "-m", str(MEM_MB),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
            "-drive", f"file={self.disk},if=virtio,format=raw,cache=unsafe",
            "-drive", f"file={self.drbd_disk},if=virtio,format=raw,cache=writeback",
            "-netdev", f"tap,id=n0,ifname={self.node.veth},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac=52:54:00:88:00:{int(octet):02x}",
            "-virtfs", f"local,path={util.REPO},mount_tag=repo,security_model=none,readonly=on",
            "-device", "virtio-serial-pci", *ports,
            "-serial", f"file:{self.console_log}", "-monitor", "none",
            "-pidfile", str(self.pidfile),
        ]  # fmt: skip

    def boot(self, kernel: Path, initrd: Path) -> None:
        if self.alive():
            raise util.LabError(f"node '{self.node.name}' is already running")
        self.pidfile.unlink(missing_ok=True)
        self.ctl.unlink(missing_ok=True)
        self.mux.unlink(missing_ok=True)
        log = open(self.dir / "qemu.log", "ab")  # noqa: SIM115 - owned by the child
        # qemu makes its tap inside the lab's switch namespace, where the bridge is
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.lab.netns, *self.argv(kernel, initrd)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def tap_up():
            if proc.poll() is not None:
                tail = (self.dir / "qemu.log").read_text(errors="replace")[-2000:]
                raise util.LabError(f"{self.node.name}: qemu exited at start:\n{tail}")
            return self.lab._veth_present(self.node) and self.alive()

        util.wait_for(tap_up, 30, what=f"{self.node.name}'s qemu and tap")
        util.run(["ip", "-n", self.lab.netns, "link", "set", self.node.veth, "master", "br0", "up"])
        mux_log = open(self.dir / "mux.log", "ab")  # noqa: SIM115 - owned by the child
        subprocess.Popen(
            [sys.executable, "-m", "mclab.guest_mux", str(self.ctl), str(self.mux),
             str(self.pid())],
            cwd=util.REPO / "lab", stdin=subprocess.DEVNULL, stdout=mux_log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        mux_log.close()

    def wait_booted(self) -> None:
        """The agent answers and systemd has finished booting (running or degraded)."""
        started = time.monotonic()

        def booted():
            if not self.alive():
                raise util.LabError(
                    f"{self.node.name}: the guest died while booting; console:\n"
                    + self.console_tail()
                )
            res = self.run(["systemctl", "is-system-running"], timeout=20, quiet=True)
            return res is not None and res.stdout.strip() in ("running", "degraded")

        try:
            util.wait_for(booted, BOOT_TIMEOUT, interval=2, what=f"{self.node.name} to boot")
        except util.LabError as exc:
            raise util.LabError(
                f"{exc}\n{self.node.name}'s console:\n{self.console_tail()}"
            ) from None
        util.info(f"   {self.node.name} booted ({self.node.ip}, qemu guest, "
                  f"{time.monotonic() - started:.0f} s)")  # fmt: skip

    def kill(self) -> None:
        """Hard power-off: qemu dies at once; its tap (the link) goes with it."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            util.wait_for(lambda: not self.alive(), 10, what=f"{self.node.name}'s qemu to die")
        util.run(["ip", "-n", self.lab.netns, "link", "del", self.node.veth], check=False)

    def stop(self) -> None:
        """Graceful power-off through systemd; a hard one if it does not finish in 90 s."""
        self.run(["systemctl", "--no-block", "poweroff"], timeout=20, quiet=True)
        try:
            util.wait_for(lambda: not self.alive(), 90, interval=1, what="power-off")
        except util.LabError:
            util.info(f"{self.node.name} did not power off in 90 s: killing it")
        self.kill()

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ----- commands ---------------------------------------------------------------------------
    def run(self, cmd: list[str], timeout: float = 3600, quiet: bool = False, stdin=None):
        """Run ``cmd`` in the guest; a CompletedProcess (``None`` when ``quiet`` and the agent
        cannot be reached). Raises LabError when it cannot be reached and not ``quiet``."""
        try:
            reply = self._request(cmd, timeout, stdin)
        except (OSError, ConnectionError, TimeoutError) as exc:
            if quiet:
                return None
            raise util.LabError(
                f"{self.node.name}: the control agent does not answer: {exc}"
            ) from exc
        rc = reply.get("rc")
        if reply.get("timeout"):
            rc = 124
        return subprocess.CompletedProcess(
            cmd, 255 if rc is None else rc, reply.get("stdout", ""), reply.get("stderr", "")
        )

    def _request(self, cmd: list[str], timeout: float, stdin) -> dict:
        req: dict = {"op": "run", "argv": list(cmd), "timeout": timeout}
        if stdin:
            raw = stdin.encode() if isinstance(stdin, str) else stdin
            req["stdin"] = base64.b64encode(raw).decode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout + 30)
            sock.connect(str(self.mux))
            with sock.makefile("rwb") as stream:
                stream.write((json.dumps(req) + "\n").encode())
                stream.flush()
                line = stream.readline()
        if not line:
            raise ConnectionError("the control channel closed")
        reply = json.loads(line)
        if "error" in reply:
            raise ConnectionError(reply["error"])
        return reply
