"""The guest layer: what turns the lab's base image into a bootable qemu guest (issue 11).

`lab/lab up --storage drbd` runs mx1 and mx2 as qemu guests with their own kernel (the host
kernel has no DRBD, OCFS2 or configfs). A guest's root is the same base image the nspawn
nodes use, plus this layer on top of it:

- lab/packages.txt's [guest] section, from the base image's local repository (no network):
  Debian's kernel, with a small initramfs that can mount an ext4 root on virtio and the 9p
  shares, and the mail pair's packages that Salt would otherwise install under TCG, every
  service they bring disabled like the base image's (the guests boot bare all the same);
- the control agent (lab/vm/guest/mc-agent, the vm tier's) as a systemd unit, on the
  virtio-serial ports mc.ctl*: commands reach a guest even while its network is cut or its
  firewall closed;
- a copy of the host's venv at the same path (/opt/mc-venv), byte-compiled: over 9p under
  TCG, the minion took more than 3 minutes to start, every module import a round trip;
- an fstab that mounts the repository over 9p, read-only, where the nspawn nodes have it
  bind-mounted (/srv/mailcluster).

The layer is an overlay upper directory cached under STATE_ROOT/images/guest-<key>, where the
key hashes the base image's name, this builder's version, the agent and requirements.txt: a
new base image, agent or venv builds a new layer, an unchanged one is reused (about a minute
to build).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import image, util

sys.path.insert(0, str(util.REPO / "lab/vm"))
import build_image

BUILDER_VERSION = "3"
AGENT = util.REPO / "lab/vm/guest/mc-agent"
# The vm tier's initramfs module list: the same root (ext4 on virtio) and 9p shares to mount.
INITRAMFS_MODULES = build_image.INITRAMFS_MODULES
# Module folders a guest with only virtio devices never loads; nfs/nfsd stay (issue 16).
PRUNE_MODULE_DIRS = (
    "kernel/sound",
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/net/ethernet",
    "kernel/drivers/infiniband",
    "kernel/drivers/staging",
    "kernel/drivers/usb",
    "kernel/drivers/scsi",
    "kernel/drivers/bluetooth",
    "kernel/drivers/hid",
    "kernel/drivers/iio",
    "kernel/drivers/input",
    "kernel/drivers/video",
    "kernel/drivers/mtd",
    "kernel/drivers/isdn",
    "kernel/net/wireless",
    "kernel/net/mac80211",
    "kernel/net/bluetooth",
    "kernel/fs/btrfs",
    "kernel/fs/xfs",
    "kernel/fs/f2fs",
    "kernel/fs/ntfs3",
)
AGENT_UNIT = """\
[Unit]
Description=Lab control agent (virtio-serial mc.ctl*: lab/lab run, the tests)
DefaultDependencies=no
After=systemd-udevd.service
Before=sysinit.target

[Service]
ExecStart=/usr/bin/python3 /usr/local/sbin/mc-agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
"""
# the repo as a 9p share of the host (qemu -virtfs ... mount_tag=repo): read-only, and cached, since
# under TCG every uncached lookup is a round trip through the emulated virtio queue.
FSTAB = """\
# Written by the lab (lab/mclab/guest_image.py).
/dev/vda / ext4 rw,noatime,errors=remount-ro 0 1
repo /srv/mailcluster 9p trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144,nofail 0 0
"""


def layer_key(base: Path) -> str:
    h = hashlib.sha256(f"{BUILDER_VERSION}\n{base.name}\n".encode())
    h.update(AGENT.read_bytes())
    h.update(AGENT_UNIT.encode() + FSTAB.encode())
    h.update((util.REPO / "requirements.txt").read_bytes())
    return h.hexdigest()[:12]


def ensure_layer(base: Path) -> Path:
    """The cached guest layer for ``base`` (its ``upper`` dir is an overlay layer)."""
    final = util.STATE_ROOT / "images" / f"guest-{layer_key(base)}"
    if (final / ".mc-image-complete").exists():
        return final
    with open(final.parent / ".guest-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".mc-image-complete").exists():
            return final
        return _build(final, base)


def kernel_files(layer: Path) -> tuple[Path, Path]:
    """(vmlinuz, initrd) of the layer's kernel."""
    boot = layer / "upper/boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    if not kernels:
        raise util.LabError(f"no kernel in the guest layer {layer}: remove it and retry")
    kver = kernels[-1].name.removeprefix("vmlinuz-")
    return kernels[-1], boot / f"initrd.img-{kver}"


def _build(final: Path, base: Path) -> Path:
    work = final.with_name(final.name + ".building")
    if work.exists():
        image._unmount_under(work)
        shutil.rmtree(work)
    root = work / "root"
    for sub in ("upper", "work", "root"):
        (work / sub).mkdir(parents=True)
    started = time.monotonic()
    util.step(f"building the guest layer {final.name} (kernel, mail packages, agent; a minute)")
    util.run([
        "mount", "-t", "overlay", "overlay", "-o",
        f"lowerdir={base},upperdir={work / 'upper'},workdir={work / 'work'}", root,
    ])  # fmt: skip
    try:
        _guest_files(root)
        _install_packages(root)  # last: leaving its chroot unmounts everything under root
    except BaseException:
        image._unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        raise
    image._unmount_under(root)
    shutil.rmtree(work / "work", ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    (work / ".mc-image-complete").write_text(f"{time.time()}\n")
    work.rename(final)
    _prune_old_layers(final)
    util.info(f"guest layer ready in {time.monotonic() - started:.0f} s: {final}")
    return final


def _install_packages(root: Path) -> None:
    packages = image.parse_package_list((util.REPO / "lab/packages.txt").read_text())["guest"]
    conf = root / "etc/initramfs-tools"
    (conf / "conf.d").mkdir(parents=True, exist_ok=True)
    (conf / "conf.d/mc-guest.conf").write_text("MODULES=list\nCOMPRESS=gzip\n")
    with open(conf / "modules", "a") as fh:
        fh.write("\n".join(INITRAMFS_MODULES) + "\n")
    with image._chroot_mounts(root):
        # the local repository only: [guest] was downloaded when the base image was built
        image._chroot(
            root, "apt-get", "-y", "-q", "--no-install-recommends", "install", *packages,
            label="guest-packages",
        )  # fmt: skip
        image._disable_services(root)
        modules = root / "lib/modules"
        kvers = sorted(p.name for p in modules.iterdir())
        for kver in kvers:
            for rel in PRUNE_MODULE_DIRS:
                shutil.rmtree(modules / kver / rel, ignore_errors=True)
            image._chroot(root, "depmod", "-a", kver, label="guest-depmod")
        image._chroot(root, "update-initramfs", "-u", "-k", "all", label="guest-initramfs")
        (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")


def _guest_files(root: Path) -> None:
    agent = root / "usr/local/sbin/mc-agent"
    agent.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(AGENT, agent)
    agent.chmod(0o755)
    unit = root / "etc/systemd/system/mc-agent.service"
    unit.write_text(AGENT_UNIT)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "mc-agent.service").symlink_to("/etc/systemd/system/mc-agent.service")
    (root / "etc/fstab").write_text(FSTAB)
    (root / "srv/mailcluster").mkdir(parents=True, exist_ok=True)
    venv = root / str(util.VENV).lstrip("/")
    shutil.copytree(util.VENV, venv, symlinks=True, dirs_exist_ok=True)
    # compiled now: under TCG, compiling Salt's modules on first use costs every start minutes
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "2", str(venv / "lib")],
        capture_output=True,
        check=False,
    )
    # `lab/lab stop` powers a guest off (qemu exits); a reboot (OCFS2's self-fence, a fence-peer
    # handler's denial) restarts it in the same qemu, as a real machine would
    (root / "etc/systemd/system/ctrl-alt-del.target").unlink(missing_ok=True)


def _prune_old_layers(keep: Path) -> None:
    for old in keep.parent.glob("guest-*"):
        in_use = str(old) in Path("/proc/mounts").read_text()
        if old != keep and old.is_dir() and not old.name.endswith(".building") and not in_use:
            shutil.rmtree(old, ignore_errors=True)
