"""Small helpers shared by the lab's commands: errors, progress output, subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STATE_ROOT = Path(os.environ.get("MC_STATE_DIR", "/var/lib/mailcluster"))
REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("MC_VENV", "/opt/mc-venv"))

HOST_TOOL_PACKAGES = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "nft": "nftables",
    "chroot": "coreutils",
}


class LabError(Exception):
    """A problem the user can act on; printed without a traceback."""


def info(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def step(msg: str) -> None:
    print(f"lab: -> {msg}", file=sys.stderr, flush=True)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, mounts, cgroups): run it with sudo")


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = sorted({HOST_TOOL_PACKAGES.get(t, t) for t in missing})
        raise LabError(
            f"missing host tool(s): {', '.join(missing)}; install them with "
            f"`apt-get install {' '.join(pkgs)}` (lab/host-setup does it for you)"
        )


def run(cmd, check=True, **kw) -> subprocess.CompletedProcess:
    """Run a command, capturing output; a failure raises LabError with its stderr."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run([str(c) for c in cmd], check=False, **kw)
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip()
        raise LabError(f"command failed (rc={proc.returncode}): {' '.join(map(str, cmd))}\n{err}")
    return proc


def run_logged(cmd, label: str, env=None) -> None:
    """Run a long command with its output in a log file and a heartbeat line on the terminal."""
    log_dir = STATE_ROOT / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        last = started
        while proc.poll() is None:
            time.sleep(1)
            if time.monotonic() - last >= 20:
                last = time.monotonic()
                tail = _last_line(log_path)
                info(f"   {label}: {time.monotonic() - started:.0f} s ... {tail[:90]}")
    if proc.returncode != 0:
        raise LabError(
            f"{label} failed (rc={proc.returncode}); last lines of {log_path}:\n"
            + "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        )
    info(f"   {label}: done in {time.monotonic() - started:.0f} s")


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
