"""Build and cache the lab's Debian 12 base image.

The image is a plain directory (the overlay lower layer of every node). Its name carries a hash
of lab/packages.txt and of this builder's version, so a changed package list builds a new image
and an unchanged one is reused. Packages come from debootstrap's and apt's own defaults: no
mirror is named here.

Inside the image:
- the [install] packages, with every service they bring disabled (nodes boot bare);
- a local flat package repository (/var/local/mc-debs) holding every .deb fetched during the
  build, and the only apt source of the nodes, so that `apt-get update` and Salt's pkg states
  work in nodes that have no network of their own.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import util

BUILDER_VERSION = "4"
SUITE = "bookworm"
LOCAL_REPO = "/var/local/mc-debs"
# Units that stay enabled in the base image; everything else a package enabled is disabled.
KEEP_ENABLED = {
    "cron.service",
    "rsyslog.service",
    "systemd-networkd.service",
    "remote-fs.target",
    "dbus.service",
}
DEBCONF_PRESEED = """\
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string localhost
mariadb-server mariadb-server/feedback boolean false
"""


def parse_package_list(text: str) -> dict[str, list[str]]:
    """Split packages.txt into its [install], [download] and [guest] sections."""
    sections: dict[str, list[str]] = {"install": [], "download": [], "guest": []}
    current = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            if current not in sections:
                raise util.LabError(f"packages.txt line {lineno}: unknown section {line}")
            continue
        if current is None:
            raise util.LabError(f"packages.txt line {lineno}: package outside a section")
        sections[current].extend(line.split())
    if not sections["install"]:
        raise util.LabError("packages.txt: the [install] section is empty")
    return sections


def image_key(package_text: str) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION}\n{package_text}".encode()).hexdigest()
    return digest[:12]


def image_path(package_file: Path) -> Path:
    return util.STATE_ROOT / "images" / f"base-{image_key(package_file.read_text())}"


def ensure_image(package_file: Path) -> Path:
    """Return the cached image for this package list, building it first if missing."""
    final = image_path(package_file)
    if (final / ".mc-image-complete").exists():
        return final
    util.require_tools("debootstrap", "chroot")
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / ".build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            util.info("another process is building the base image: waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".mc-image-complete").exists():
            return final
        return _build(final, package_file)


def _build(final: Path, package_file: Path) -> Path:
    packages = parse_package_list(package_file.read_text())
    work = final.with_name(final.name + ".building")
    if work.exists():
        util.info(f"removing an interrupted image build at {work}")
        _unmount_under(work)
        shutil.rmtree(work)
    work.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        _debootstrap(work)
        with _chroot_mounts(work):
            _install(work, packages)
        _make_local_repo(work)
        _disable_services(work)
        _finish(work)
    except BaseException:
        _unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        raise
    (work / ".mc-image-complete").write_text(f"{time.time()}\n")
    work.rename(final)
    _prune_old_images(final)
    util.info(f"base image ready in {time.monotonic() - started:.0f} s: {final}")
    return final


def _debootstrap(root: Path) -> None:
    util.step(f"debootstrap --variant=minbase {SUITE} (about 1.5 minutes)")
    util.run_logged(
        ["debootstrap", "--variant=minbase", "--include=apt-utils,ca-certificates", SUITE, root],
        label="debootstrap",
    )


class _chroot_mounts:
    """proc, sys, dev and the host's resolver for apt inside the image being built."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self):
        for fs, target, opts in (
            ("proc", "proc", []),
            ("sysfs", "sys", []),
            ("/dev", "dev", ["--bind"]),
            ("/dev/pts", "dev/pts", ["--bind"]),
        ):
            dest = self.root / target
            dest.mkdir(parents=True, exist_ok=True)
            if opts:
                subprocess.run(["mount", *opts, fs, dest], check=True)
            else:
                subprocess.run(["mount", "-t", fs, fs, dest], check=True)
        shutil.copy("/etc/resolv.conf", self.root / "etc/resolv.conf")
        policy = self.root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\n# no service starts while the image is built\nexit 101\n")
        policy.chmod(0o755)
        return self

    def __exit__(self, *exc):
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        _unmount_under(self.root)


def _chroot(root: Path, *cmd: str, label: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
        "HOME": "/root",
    }
    util.run_logged(["chroot", root, *cmd], label=label, env=env)


def _install(root: Path, packages: dict[str, list[str]]) -> None:
    apt = ["apt-get", "-y", "-q", "--no-install-recommends"]
    (root / "tmp/preseed").write_text(DEBCONF_PRESEED)
    util.step("apt-get update in the image")
    _chroot(root, "apt-get", "-q", "update", label="apt-update")
    _chroot(root, "apt-get", "install", "-y", "-q", "debconf-utils", label="apt-debconf")
    _chroot(root, "debconf-set-selections", "/tmp/preseed", label="preseed")
    util.step(f"installing {len(packages['install'])} packages (several minutes)")
    _chroot(root, *apt, "install", *packages["install"], label="apt-install")
    # the guest layer installs [guest] from the local repository (lab/mclab/guest_image.py)
    later = packages["download"] + packages["guest"]
    if later:
        util.step(f"downloading {len(later)} packages for later installs")
        _chroot(root, *apt, "install", "--download-only", *later, label="apt-dl")


def _make_local_repo(root: Path) -> None:
    """Move every fetched .deb into a flat repository that becomes the nodes' only source."""
    util.step("building the image's local package repository")
    repo = root / LOCAL_REPO.lstrip("/")
    repo.mkdir(parents=True, exist_ok=True)
    archives = root / "var/cache/apt/archives"
    for deb in archives.glob("*.deb"):
        shutil.move(deb, repo / deb.name)
    # chroot resets the cwd to /, so change into the repository inside the chroot.
    packages = subprocess.run(
        ["chroot", root, "sh", "-c", f"cd {LOCAL_REPO} && apt-ftparchive packages ."],
        capture_output=True,
        text=True,
        check=True,
    )
    (repo / "Packages").write_text(packages.stdout)
    sources = root / "etc/apt/sources.list"
    sources.write_text(
        "# The lab nodes have no network: their only source is the image's local repository.\n"
        f"deb [trusted=yes] file:{LOCAL_REPO} ./\n"
    )
    for extra in (root / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    subprocess.run(
        ["chroot", root, "apt-get", "-q", "update"], check=True, capture_output=True, text=True
    )


def _disable_services(root: Path) -> None:
    """Nodes boot bare: only the units in KEEP_ENABLED stay enabled."""
    wants = root / "etc/systemd/system/multi-user.target.wants"
    to_disable = sorted(link.name for link in wants.glob("*") if link.name not in KEEP_ENABLED)
    # `systemctl disable` (offline, --root) also removes Alias= links such as bind9.service ->
    # named.service; deleting only the wants links would leave the unit "enabled" by its alias,
    # and Salt's service.enabled would then never create the wants link again.
    if to_disable:
        util.run(["systemctl", f"--root={root}", "disable", *to_disable])
    for target in ("sockets.target.wants", "timers.target.wants"):
        for link in (root / "etc/systemd/system" / target).glob("*"):
            if link.name.startswith(("mariadb", "php", "dovecot", "postfix", "bind", "named")):
                link.unlink()
    networkd = root / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    if not networkd.exists():
        networkd.symlink_to("/lib/systemd/system/systemd-networkd.service")
    # Nothing in the lab needs these, and some fail in a container.
    for unit in ("systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        mask = root / "etc/systemd/system" / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")


def _finish(root: Path) -> None:
    (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
    (root / "etc/machine-id").write_text("")
    (root / "tmp/preseed").unlink(missing_ok=True)
    os.chmod(root / "tmp", 0o1777)


def _unmount_under(root: Path) -> None:
    """Unmount everything at or below root, deepest first."""
    prefix = str(root.resolve())
    mounts = [
        line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()
    ]
    for mnt in sorted(
        (m for m in mounts if m == prefix or m.startswith(prefix + "/")), key=len, reverse=True
    ):
        subprocess.run(["umount", "-l", mnt], check=False)


def _prune_old_images(keep: Path) -> None:
    for old in keep.parent.glob("base-*"):
        if old != keep and old.is_dir() and not _image_in_use(old):
            util.info(f"removing the superseded image {old.name}")
            shutil.rmtree(old, ignore_errors=True)


def _image_in_use(image: Path) -> bool:
    return str(image) in Path("/proc/mounts").read_text()
