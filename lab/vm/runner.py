#!/opt/mc-venv/bin/python
"""Boot qemu guests for the real DRBD/OCFS2 tier and run commands in them.

:class:`Pair` boots mx1 and mx2 (10.99.0.11/.12) from the cached image (``build_image.py``);
each :class:`Guest` is a qemu process (``qemu.py``: disks, command line, network, shares)
spoken to over its control channel (``channel.py``: JSON lines with ``guest/mc-agent``):
run a command, get rc/stdout/stderr; configure and call a masterless salt minion.

Guests are always torn down: :class:`Pair` is a context manager, every qemu is also killed
by ``atexit`` and by the kernel when this process dies (``PR_SET_PDEATHSIG``).

CLI (debugging): ``lab/vm/runner.py shell`` boots the pair and runs commands typed as
``mx1: CMD`` / ``mx2: CMD`` until EOF; ``runner.py serve SOCK`` boots it and serves
``runner.py exec SOCK mx1 CMD`` (and ``kill SOCK mx1`` / ``start SOCK mx1``) until killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_image  # noqa: E402
import qemu  # noqa: E402
from channel import Channel, GuestCommandError, Result  # noqa: E402
from qemu import DRBD_DISK_MB, MEM_MB, TB_SIZE, free_udp_port  # noqa: E402

REPO = HERE.parent.parent
GUEST_REPO = "/srv/mailcluster"
SUBNET = "10.99.0"
NODES = {"mx1": f"{SUBNET}.11", "mx2": f"{SUBNET}.12"}
SALT_CALL = "/opt/mc-venv/bin/salt-call"

__all__ = [
    "DRBD_DISK_MB",
    "GUEST_REPO",
    "MEM_MB",
    "NODES",
    "REPO",
    "TB_SIZE",
    "Guest",
    "GuestCommandError",
    "Pair",
    "Result",
    "available",
    "build_image",
]


def available() -> tuple[bool, str]:
    """Whether this host can run the vm tier, and why not."""
    if os.geteuid() != 0:
        return False, "needs root"
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            return False, f"{tool} not found"
    if not build_image.is_built(build_image.image_dir()):
        if shutil.which("debootstrap") is None:
            return False, "no cached guest image and debootstrap not found"
        if not build_image.VENV.exists():
            return False, f"no cached guest image and {build_image.VENV} missing"
    return True, ""


@dataclass
class Guest:
    name: str
    ip: str
    index: int
    workdir: Path
    image: Path
    udp_own: int
    udp_peer: int
    shared_dir: Path
    hosts: str
    repo: Path = REPO
    proc: subprocess.Popen | None = None
    boot_seconds: float | None = None
    _channel: Channel | None = None

    @property
    def ctl_path(self) -> Path:
        return self.workdir / f"{self.name}.ctl"

    @property
    def console_log(self) -> Path:
        return self.workdir / f"{self.name}.console.log"

    def qemu_argv(self) -> list[str]:
        overlay, drbd = qemu.prepare_disks(self.workdir, self.name, self.image)
        return qemu.argv(self, overlay, drbd)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.alive():
            return
        self._disconnect()
        self.ctl_path.unlink(missing_ok=True)
        with open(self.console_log, "a") as fh:
            fh.write(f"\n==== start {time.strftime('%H:%M:%S')} ====\n")
        self._t_start = time.monotonic()
        self.proc = qemu.spawn(self.qemu_argv(), self.workdir / f"{self.name}.qemu.log")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 240) -> float:
        """Wait until the agent answers; returns the boot time in seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name}: qemu exited\n{self.console_tail()}")
            if self._channel is None:
                try:
                    self._channel = Channel(self.name, self.ctl_path)
                except OSError:
                    time.sleep(0.5)
                    continue
            try:
                reply = self._request({"op": "ping"}, timeout=3)
            except TimeoutError:
                continue
            if reply.get("ok"):
                self.boot_seconds = round(time.monotonic() - self._t_start, 1)
                return self.boot_seconds
        raise TimeoutError(f"{self.name}: agent not ready after {timeout}s\n{self.console_tail()}")

    def kill(self) -> None:
        """Hard power-off (SIGKILL to qemu): what a crashed node looks like to its peer."""
        if self.proc is not None:
            qemu.kill(self.proc)
        self._disconnect()

    def console_tail(self, n: int = 40) -> str:
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # -- control channel (channel.py) -------------------------------------------------------
    def _disconnect(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None

    def _request(self, req: dict, timeout: float) -> dict:
        if self._channel is None:
            raise ConnectionError(f"{self.name}: not connected")
        return self._channel.request(req, timeout)

    def run(
        self,
        cmd: str | list[str],
        timeout: float = 300,
        check: bool = False,
        stdin: bytes | str | None = None,
    ) -> Result:
        """Run ``cmd`` (a shell string or an argv list) in the guest."""
        req: dict = {"op": "run", "timeout": timeout}
        if isinstance(cmd, str):
            req["sh"] = cmd
        else:
            req["argv"] = list(cmd)
        if stdin is not None:
            raw = stdin.encode() if isinstance(stdin, str) else stdin
            req["stdin"] = base64.b64encode(raw).decode()
        reply = self._request(req, timeout=timeout + 15)
        res = Result(
            rc=reply.get("rc"),
            stdout=reply.get("stdout", ""),
            stderr=reply.get("stderr", ""),
            timeout=bool(reply.get("timeout")),
            stuck=bool(reply.get("stuck")),
            duration=float(reply.get("duration") or 0.0),
            cmd=cmd if isinstance(cmd, str) else " ".join(cmd),
        )
        return res.check() if check else res

    def write_file(self, path: str, content: str | bytes, mode: str = "0644") -> None:
        self.run(
            f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}' && chmod {mode} '{path}'",
            stdin=content,
            check=True,
        )

    # -- salt --------------------------------------------------------------------------------
    def configure_salt(self, pillar_root: str, extra: dict | None = None) -> None:
        """Masterless minion: file_roots [repo/salt, repo] so _modules/_states sync."""
        conf = {
            "id": self.name,
            "file_client": "local",
            "file_roots": {"base": [f"{GUEST_REPO}/salt", GUEST_REPO]},
            "pillar_roots": {"base": [pillar_root]},
            "log_level": "warning",
            "log_file": "/var/log/salt/minion",
            "state_output": "changes",
        }
        conf.update(extra or {})
        self.write_file("/etc/salt/minion", json.dumps(conf, indent=2) + "\n")

    def salt_call(
        self, args: str, timeout: float = 600, check: bool = False, pillar: dict | None = None
    ) -> tuple[Result, object]:
        """``salt-call --local --out=json ARGS``; returns (result, parsed ``local`` value)."""
        cmd = f"{SALT_CALL} --local --out=json --retcode-passthrough {args}"
        if pillar is not None:
            cmd += " pillar=" + _shquote(json.dumps(pillar))
        res = self.run(cmd, timeout=timeout)
        data: object = None
        with contextlib.suppress(ValueError):
            data = json.loads(res.stdout).get("local")
        if check and res.rc != 0:
            raise GuestCommandError(res)
        return res, data


def _shquote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


class Pair:
    """Two guests (mx1, mx2) on a private network; a context manager that always tears down.

    ``workdir`` keeps the disks and logs (a temporary dir by default, removed on exit unless
    ``keep=True`` or ``MC_VM_KEEP=1``).
    """

    def __init__(self, workdir: Path | None = None, keep: bool | None = None):
        self.image = build_image.ensure_image()
        self._own_workdir = workdir is None
        base = Path(os.environ.get("MC_VM_WORKDIR", "/var/lib/mailcluster/vm-run"))
        base.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="pair-", dir=base))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep = keep if keep is not None else os.environ.get("MC_VM_KEEP") == "1"
        self.shared_dir = self.workdir / "shared"
        self.shared_dir.mkdir(exist_ok=True)
        ports = [free_udp_port(), free_udp_port()]
        hosts = ",".join(f"{n}:{ip}" for n, ip in NODES.items())
        self.guests: dict[str, Guest] = {}
        for i, (name, ip) in enumerate(NODES.items()):
            self.guests[name] = Guest(
                name=name,
                ip=ip,
                index=i + 1,
                workdir=self.workdir,
                image=self.image,
                udp_own=ports[i],
                udp_peer=ports[1 - i],
                shared_dir=self.shared_dir,
                hosts=hosts,
            )

    def __getitem__(self, name: str) -> Guest:
        return self.guests[name]

    def __iter__(self):
        return iter(self.guests.values())

    def start(self, timeout: float = 300) -> dict[str, float]:
        for g in self:
            g.start()
        return {g.name: g.wait_ready(timeout) for g in self}

    def stop(self) -> None:
        for g in self:
            g.kill()

    def __enter__(self) -> Pair:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self.stop()
        if self._own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(sock_path: str) -> int:
    """Boot the pair and serve ``{"guest": NAME, "cmd": ..., "timeout": N}`` JSON lines on a
    unix socket (one request per connection) until killed: for interactive debugging."""
    with Pair(keep=True) as pair:
        print(f"pair up in {pair.workdir}, boot {[g.boot_seconds for g in pair]}", flush=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock_path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(sock_path)
        srv.listen(4)

        def handle(conn: socket.socket) -> None:
            with conn, conn.makefile("rwb") as fh:
                req = json.loads(fh.readline())
                guest = pair[req["guest"]]
                if req.get("op") == "kill":
                    guest.kill()
                    out = {"rc": 0, "stdout": "killed", "stderr": ""}
                elif req.get("op") == "start":
                    guest.start()
                    out = {"rc": 0, "stdout": f"boot {guest.wait_ready()}", "stderr": ""}
                else:
                    res = guest.run(req["cmd"], timeout=req.get("timeout", 600))
                    out = {"rc": res.rc, "stdout": res.stdout, "stderr": res.stderr}
                fh.write((json.dumps(out) + "\n").encode())

        while True:
            conn, _ = srv.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _exec(sock_path: str, guest: str, cmd: str, op: str = "run") -> int:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    with s, s.makefile("rwb") as fh:
        fh.write((json.dumps({"guest": guest, "cmd": cmd, "op": op}) + "\n").encode())
        fh.flush()
        out = json.loads(fh.readline())
    sys.stdout.write(out["stdout"])
    sys.stderr.write(out["stderr"])
    return out["rc"] if out["rc"] is not None else 124


def _shell() -> int:
    with Pair(keep=True) as pair:
        print(f"pair up in {pair.workdir}: type 'mx1: CMD' or 'mx2: CMD'", flush=True)
        for line in sys.stdin:
            name, _, cmd = line.partition(":")
            if name.strip() not in pair.guests:
                print("prefix with mx1: or mx2:")
                continue
            res = pair[name.strip()].run(cmd.strip(), timeout=600)
            print(res.stdout, end="")
            print(res.stderr, end="", file=sys.stderr)
            print(f"[rc={res.rc}]", flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["shell"]:
        sys.exit(_shell())
    if args[:1] == ["serve"] and len(args) == 2:
        sys.exit(_serve(args[1]))
    if args[:1] == ["exec"] and len(args) >= 4:
        sys.exit(_exec(args[1], args[2], " ".join(args[3:])))
    if args[:1] in (["kill"], ["start"]) and len(args) == 3:
        sys.exit(_exec(args[1], args[2], "", op=args[0]))
    print(__doc__)
