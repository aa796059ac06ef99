#!/opt/mc-venv/bin/python
"""Build (or reuse) the qemu guest image for the real DRBD/OCFS2 storage tier.

The image is a Debian bookworm ``debootstrap --variant=minbase`` root with the packages of
``lab/vm/packages.txt`` (installed with ``--no-install-recommends``), the host venv copied to
the same path (``/opt/mc-venv``, so ``salt-call`` runs inside the guest), a small init
(``guest/mc-init``) and a control agent (``guest/mc-agent``).

Cache: ``/var/lib/mailcluster/vm/<key>/`` (``MC_VM_CACHE`` overrides the parent), where
``<key>`` hashes the builder version, packages.txt, the guest files and requirements.txt. A
change to any of them makes a new image; an existing one is reused as it is. The directory
holds ``rootfs.img`` (raw ext4, used read-only as the backing file of per-guest qcow2
overlays), ``vmlinuz``, ``initrd.img`` and ``manifest.json``.

Usage: ``lab/vm/build_image.py [--force] [--print-dir]``. Needs root, debootstrap, a Debian
mirror reachable by apt (debootstrap's default one is used) and ``/opt/mc-venv``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILDER_VERSION = "5"
SUITE = "bookworm"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGES_FILE = HERE / "packages.txt"
GUEST_FILES = {"mc-init": "/sbin/mc-init", "mc-agent": "/usr/local/sbin/mc-agent"}
VENV = Path("/opt/mc-venv")
IMAGE_SIZE = os.environ.get("MC_VM_IMAGE_SIZE", "1400M")
# initramfs modules: enough to mount the root (virtio disk, ext4) and the 9p repo share.
INITRAMFS_MODULES = [
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "ext4",
    "9p",
    "9pnet_virtio",
]
# Kernel module folders the guests never need (a minimal guest has only virtio devices).
PRUNE_MODULE_DIRS = [
    "kernel/sound",
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/net/ethernet",
    "kernel/drivers/net/can",
    "kernel/drivers/net/usb",
    "kernel/drivers/infiniband",
    "kernel/drivers/staging",
    "kernel/drivers/usb",
    "kernel/drivers/scsi",
    "kernel/drivers/bluetooth",
    "kernel/drivers/hid",
    "kernel/drivers/iio",
    "kernel/drivers/isdn",
    "kernel/drivers/mtd",
    "kernel/drivers/input",
    "kernel/drivers/video",
    "kernel/drivers/hwmon",
    "kernel/drivers/platform",
    "kernel/drivers/thunderbolt",
    "kernel/drivers/nfc",
    "kernel/drivers/atm",
    "kernel/drivers/misc",
    "kernel/drivers/mfd",
    "kernel/drivers/firewire",
    "kernel/drivers/edac",
    "kernel/drivers/leds",
    "kernel/drivers/watchdog",
    "kernel/drivers/ata",
    "kernel/drivers/target",
    "kernel/drivers/pinctrl",
    "kernel/drivers/power",
    "kernel/drivers/regulator",
    "kernel/drivers/i2c",
    "kernel/drivers/spi",
    "kernel/drivers/mmc",
    "kernel/drivers/nvme",
    "kernel/net/wireless",
    "kernel/net/mac80211",
    "kernel/net/bluetooth",
    "kernel/fs/btrfs",
    "kernel/fs/xfs",
    "kernel/fs/nfs",
    "kernel/fs/nfsd",
    "kernel/fs/ceph",
    "kernel/fs/smb",
    "kernel/fs/f2fs",
    "kernel/fs/gfs2",
    "kernel/fs/ntfs3",
    "kernel/fs/bcachefs",
    "kernel/fs/ubifs",
    "kernel/fs/reiserfs",
]
PRUNE_DIRS = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"]


def log(msg: str) -> None:
    print(f"[build_image {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_packages() -> list[str]:
    pkgs = []
    for line in PACKAGES_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pkgs.append(line)
    return pkgs


def cache_root() -> Path:
    return Path(os.environ.get("MC_VM_CACHE", "/var/lib/mailcluster/vm"))


def image_key() -> str:
    h = hashlib.sha256()
    h.update(f"builder={BUILDER_VERSION};suite={SUITE};size={IMAGE_SIZE}\n".encode())
    h.update(PACKAGES_FILE.read_bytes())
    for name in sorted(GUEST_FILES):
        h.update((HERE / "guest" / name).read_bytes())
    req = REPO / "requirements.txt"
    if req.exists():
        h.update(req.read_bytes())
    return h.hexdigest()[:16]


def image_dir() -> Path:
    return cache_root() / image_key()


def is_built(path: Path) -> bool:
    return (path / "manifest.json").exists()


def sh(cmd: list[str], *, env: dict | None = None, stream: bool = False) -> None:
    full_env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    full_env.update(env or {})
    if stream:
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith(("I: Retrieving", "I: Validating")):
                continue  # hundreds of lines; the others are enough to show progress
            print(f"    {line}", flush=True)
        rc = proc.wait()
    else:
        rc = subprocess.run(cmd, env=full_env).returncode
    if rc != 0:
        raise RuntimeError(f"command failed (rc={rc}): {' '.join(cmd)}")


def chroot(root: Path, script: str, *, stream: bool = True) -> None:
    env = {
        "DEBIAN_FRONTEND": "noninteractive",
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    sh(["chroot", str(root), "/bin/sh", "-ec", script], env=env, stream=stream)


def build(dest: Path) -> dict:
    timings: dict[str, float] = {}
    packages = read_packages()
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root()))
    root = work / "rootfs"
    mounted: list[Path] = []
    try:
        t = time.monotonic()
        log(f"debootstrap --variant=minbase {SUITE} (about 1-2 minutes)")
        sh(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=initramfs-tools",
                SUITE,
                str(root),
            ],
            stream=True,
        )
        timings["debootstrap_s"] = round(time.monotonic() - t, 1)

        # initramfs: only the listed modules (MODULES=list), set before the kernel arrives.
        conf_d = root / "etc/initramfs-tools/conf.d"
        conf_d.mkdir(parents=True, exist_ok=True)
        (conf_d / "mc-vm.conf").write_text("MODULES=list\nCOMPRESS=gzip\n")
        with open(root / "etc/initramfs-tools/modules", "a") as fh:
            fh.write("\n".join(INITRAMFS_MODULES) + "\n")
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        for fs, target in (("proc", "proc"), ("sysfs", "sys")):
            sh(["mount", "-t", fs, fs, str(root / target)])
            mounted.append(root / target)

        t = time.monotonic()
        log(f"apt-get install --no-install-recommends {' '.join(packages)} (about 1 minute)")
        chroot(
            root,
            "apt-get -q update && apt-get -q -y --no-install-recommends install "
            + " ".join(packages)
            + " && apt-get clean && rm -rf /var/lib/apt/lists/*",
        )
        timings["packages_s"] = round(time.monotonic() - t, 1)

        t = time.monotonic()
        log("guest init, agent and venv copy")
        for name, target in GUEST_FILES.items():
            dst = root / target.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(HERE / "guest" / name, dst)
            dst.chmod(0o755)
        (root / "etc/mtab").unlink(missing_ok=True)
        (root / "etc/mtab").symlink_to("../proc/self/mounts")
        (root / "etc/fstab").write_text("# mounts are made by /sbin/mc-init\n")
        # No init system in the guest (mc-init is PID 1): Salt's debian_service asks
        # `runlevel`, which only sysvinit/systemd ship. Answer "runlevel 2" as Debian's does.
        runlevel = root / "sbin/runlevel"
        if not runlevel.exists():
            runlevel.write_text('#!/bin/sh\necho "N 2"\n')
            runlevel.chmod(0o755)
        # Same path as on the host: the venv's interpreter is /usr/bin/python3 (3.11) in both.
        venv_dst = root / str(VENV).lstrip("/")
        shutil.copytree(VENV, venv_dst, symlinks=True)
        # Byte-compile everything now: under TCG, compiling salt's modules on first use
        # would cost every salt-call in the guest tens of seconds.
        chroot(root, "python3 -m compileall -q -j 2 /opt/mc-venv/lib >/dev/null || true")
        (root / "etc/salt").mkdir(parents=True, exist_ok=True)
        timings["venv_s"] = round(time.monotonic() - t, 1)

        t = time.monotonic()
        log("prune kernel modules and docs, depmod, update-initramfs")
        kvers = sorted(p.name for p in (root / "lib/modules").iterdir())
        for kver in kvers:
            for rel in PRUNE_MODULE_DIRS:
                shutil.rmtree(root / "lib/modules" / kver / rel, ignore_errors=True)
        for rel in PRUNE_DIRS:
            shutil.rmtree(root / rel, ignore_errors=True)
        (root / "usr/share/locale").mkdir(parents=True, exist_ok=True)
        chroot(
            root,
            " && ".join(f"depmod -a {k}" for k in kvers) + " && update-initramfs -u -k all",
        )
        timings["initramfs_s"] = round(time.monotonic() - t, 1)
        for mnt in reversed(mounted):
            sh(["umount", str(mnt)])
        mounted.clear()
        (root / "etc/resolv.conf").write_text("")

        kver = kvers[-1]
        out = work / "out"
        out.mkdir()
        shutil.copy(root / f"boot/vmlinuz-{kver}", out / "vmlinuz")
        shutil.copy(root / f"boot/initrd.img-{kver}", out / "initrd.img")
        t = time.monotonic()
        log(f"mkfs.ext4 -d rootfs rootfs.img {IMAGE_SIZE}")
        sh(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "mcroot",
                "-d",
                str(root),
                str(out / "rootfs.img"),
                IMAGE_SIZE,
            ]
        )
        timings["mkfs_s"] = round(time.monotonic() - t, 1)
        rootfs_mb = int(
            subprocess.run(["du", "-sm", str(root)], capture_output=True, text=True).stdout.split()[
                0
            ]
        )
        manifest = {
            "key": dest.name,
            "builder_version": BUILDER_VERSION,
            "suite": SUITE,
            "kernel": kver,
            "packages": packages,
            "rootfs_mb": rootfs_mb,
            "timings": timings,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
        return manifest
    finally:
        for mnt in reversed(mounted):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(work, ignore_errors=True)


def ensure_image(force: bool = False) -> Path:
    """Return the image directory, building it first when it is missing (or ``force``)."""
    dest = image_dir()
    if is_built(dest) and not force:
        return dest
    if os.geteuid() != 0:
        raise RuntimeError("building the guest image needs root")
    for tool in ("debootstrap", "mkfs.ext4", "chroot"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found")
    if not VENV.exists():
        raise RuntimeError(f"{VENV} not found (lab/bootstrap-venv makes it)")
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(dest) and not force:
            return dest  # built by someone else while we waited
        t0 = time.monotonic()
        log(f"building guest image {dest} (cold cache: about 3-4 minutes)")
        manifest = build(dest)
        manifest["timings"]["total_s"] = round(time.monotonic() - t0, 1)
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"image ready in {manifest['timings']['total_s']} s: {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--print-dir", action="store_true", help="print the image dir and exit")
    ap.add_argument("--prune-old", action="store_true", help="remove images of other keys")
    args = ap.parse_args(argv)
    if args.print_dir:
        print(image_dir())
        return 0
    dest = ensure_image(force=args.force)
    if args.prune_old:
        for old in cache_root().iterdir():
            if old.is_dir() and old != dest and not old.name.startswith("build-"):
                log(f"removing old image {old}")
                shutil.rmtree(old, ignore_errors=True)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
