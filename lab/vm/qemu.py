"""How a guest runs as a qemu process: its disks, its command line, and the bookkeeping that
kills every qemu with us (``atexit``, and ``PR_SET_PDEATHSIG`` when this process dies).

TCG (``-accel tcg,tb-size=...``; KVM does not work for a stock Debian guest on this host);
a qcow2 overlay over the shared read-only ``rootfs.img`` (``/dev/vda``) and a spare raw disk
for DRBD (``/dev/vdb``), both in the pair's work dir so a killed guest comes back with its
disks; a private network over UDP on loopback between the two qemus; the repo over 9p
(read-only) and a shared host dir (read-write); the control channel's virtio-serial port on a
unix socket (``channel.py``). Used by ``runner.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
from pathlib import Path

MEM_MB = int(os.environ.get("MC_VM_MEM", "768"))
TB_SIZE = int(os.environ.get("MC_VM_TB_SIZE", "256"))
DRBD_DISK_MB = int(os.environ.get("MC_VM_DRBD_DISK_MB", "128"))

_LIVE: set[subprocess.Popen] = set()


def _kill_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(5)
        _LIVE.discard(proc)


atexit.register(_kill_all)


def _pdeathsig() -> None:
    """Runs in the qemu child: die with the parent, in a process group of its own."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_disks(workdir: Path, name: str, image: Path) -> tuple[Path, Path]:
    """The guest's root overlay and DRBD disk, created once and kept across restarts."""
    overlay = workdir / f"{name}.qcow2"
    drbd = workdir / f"{name}.drbd.img"
    if not overlay.exists():
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(image / "rootfs.img"),
                str(overlay),
            ],
            check=True,
        )
    if not drbd.exists():
        with open(drbd, "wb") as fh:
            fh.truncate(DRBD_DISK_MB * 1024 * 1024)
    return overlay, drbd


def argv(guest, overlay: Path, drbd: Path) -> list[str]:
    """qemu's command line for ``guest`` (a ``runner.Guest``) with its two disks."""
    append = (
        f"root=/dev/vda rw console=ttyS0 init=/sbin/mc-init panic=5 quiet net.ifnames=0 "
        f"mc.hostname={guest.name} mc.ip={guest.ip}/24 mc.hosts={guest.hosts}"
    )
    return [
        "qemu-system-x86_64",
        "-name",
        guest.name,
        "-accel",
        f"tcg,tb-size={TB_SIZE}",
        "-machine",
        "pc",
        "-smp",
        "1",
        "-m",
        str(MEM_MB),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-kernel",
        str(guest.image / "vmlinuz"),
        "-initrd",
        str(guest.image / "initrd.img"),
        "-append",
        append,
        "-drive",
        f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        "-drive",
        f"file={drbd},if=virtio,format=raw,cache=writeback",
        "-netdev",
        f"socket,id=n0,udp=127.0.0.1:{guest.udp_peer},localaddr=127.0.0.1:{guest.udp_own}",
        "-device",
        f"virtio-net-pci,netdev=n0,mac=52:54:00:99:00:{guest.index:02x}",
        "-virtfs",
        f"local,path={guest.repo},mount_tag=repo,security_model=none,readonly=on,id=repo",
        "-virtfs",
        f"local,path={guest.shared_dir},mount_tag=shared,security_model=none,id=shared",
        "-device",
        "virtio-serial-pci",
        "-chardev",
        f"socket,id=ctl,path={guest.ctl_path},server=on,wait=off",
        "-device",
        "virtserialport,chardev=ctl,name=mc.ctl",
        "-serial",
        f"file:{guest.console_log}",
        "-monitor",
        "none",
    ]


def spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start qemu (output appended to ``log``); it dies with us."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=open(log, "a"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        preexec_fn=_pdeathsig,
    )
    _LIVE.add(proc)
    return proc


def kill(proc: subprocess.Popen) -> None:
    """Hard power-off (SIGKILL)."""
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(10)
    _LIVE.discard(proc)
