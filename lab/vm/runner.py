#!/opt/mc-venv/bin/python
"""Boot qemu guests for the real DRBD/OCFS2 tier and run commands in them.

Each guest boots the cached image (``build_image.py``) under TCG (``-accel tcg,tb-size=...``;
KVM does not work for a stock Debian guest on this host) with:

- a qcow2 overlay over the shared read-only ``rootfs.img`` (``/dev/vda``) and a spare raw disk
  for DRBD (``/dev/vdb``, 128 MiB by default), both kept in the pair's work dir so a killed
  guest comes back with its disks;
- a private network: ``-netdev socket,udp=127.0.0.1:PEER,localaddr=127.0.0.1:OWN`` (UDP on
  loopback between the two qemus; nothing leaves the machine), guest addresses 10.99.0.11/.12;
- the repo shared read-only over 9p at ``/srv/mailcluster`` and a host dir shared read-write
  at ``/srv/shared`` (the ``shared_path`` storage backend);
- a control channel: a virtio-serial port wired to a unix socket, spoken to by
  ``guest/mc-agent`` (JSON lines: run a command, get rc/stdout/stderr).

Guests are always torn down: :class:`Pair` is a context manager, every qemu is also killed
by ``atexit`` and by the kernel when this process dies (``PR_SET_PDEATHSIG``).

CLI (debugging): ``lab/vm/runner.py shell`` boots the pair and runs commands typed as
``mx1: CMD`` / ``mx2: CMD`` until EOF; ``runner.py serve SOCK`` boots it and serves
``runner.py exec SOCK mx1 CMD`` (and ``kill SOCK mx1`` / ``start SOCK mx1``) until killed.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_image  # noqa: E402

REPO = HERE.parent.parent
GUEST_REPO = "/srv/mailcluster"
SUBNET = "10.99.0"
NODES = {"mx1": f"{SUBNET}.11", "mx2": f"{SUBNET}.12"}
MEM_MB = int(os.environ.get("MC_VM_MEM", "768"))
TB_SIZE = int(os.environ.get("MC_VM_TB_SIZE", "256"))
DRBD_DISK_MB = int(os.environ.get("MC_VM_DRBD_DISK_MB", "128"))
SALT_CALL = "/opt/mc-venv/bin/salt-call"

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
class Result:
    rc: int | None
    stdout: str
    stderr: str
    timeout: bool = False
    stuck: bool = False
    duration: float = 0.0
    cmd: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> Result:
        if self.rc != 0:
            raise GuestCommandError(self)
        return self


class GuestCommandError(RuntimeError):
    def __init__(self, res: Result):
        super().__init__(
            f"guest command failed rc={res.rc} timeout={res.timeout}: {res.cmd}\n"
            f"--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"
        )
        self.result = res


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
    _sock: socket.socket | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _pending: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader: threading.Thread | None = None

    @property
    def ctl_path(self) -> Path:
        return self.workdir / f"{self.name}.ctl"

    @property
    def console_log(self) -> Path:
        return self.workdir / f"{self.name}.console.log"

    def _prepare_disks(self) -> tuple[Path, Path]:
        overlay = self.workdir / f"{self.name}.qcow2"
        drbd = self.workdir / f"{self.name}.drbd.img"
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
                    str(self.image / "rootfs.img"),
                    str(overlay),
                ],
                check=True,
            )
        if not drbd.exists():
            with open(drbd, "wb") as fh:
                fh.truncate(DRBD_DISK_MB * 1024 * 1024)
        return overlay, drbd

    def qemu_argv(self) -> list[str]:
        overlay, drbd = self._prepare_disks()
        append = (
            f"root=/dev/vda rw console=ttyS0 init=/sbin/mc-init panic=5 quiet net.ifnames=0 "
            f"mc.hostname={self.name} mc.ip={self.ip}/24 mc.hosts={self.hosts}"
        )
        return [
            "qemu-system-x86_64",
            "-name",
            self.name,
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
            str(self.image / "vmlinuz"),
            "-initrd",
            str(self.image / "initrd.img"),
            "-append",
            append,
            "-drive",
            f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-drive",
            f"file={drbd},if=virtio,format=raw,cache=writeback",
            "-netdev",
            f"socket,id=n0,udp=127.0.0.1:{self.udp_peer},localaddr=127.0.0.1:{self.udp_own}",
            "-device",
            f"virtio-net-pci,netdev=n0,mac=52:54:00:99:00:{self.index:02x}",
            "-virtfs",
            f"local,path={self.repo},mount_tag=repo,security_model=none,readonly=on,id=repo",
            "-virtfs",
            f"local,path={self.shared_dir},mount_tag=shared,security_model=none,id=shared",
            "-device",
            "virtio-serial-pci",
            "-chardev",
            f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
            "-device",
            "virtserialport,chardev=ctl,name=mc.ctl",
            "-serial",
            f"file:{self.console_log}",
            "-monitor",
            "none",
        ]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.alive():
            return
        self._disconnect()
        self.ctl_path.unlink(missing_ok=True)
        with open(self.console_log, "a") as fh:
            fh.write(f"\n==== start {time.strftime('%H:%M:%S')} ====\n")
        self._t_start = time.monotonic()
        self.proc = subprocess.Popen(
            self.qemu_argv(),
            stdin=subprocess.DEVNULL,
            stdout=open(self.workdir / f"{self.name}.qemu.log", "a"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig,
        )
        _LIVE.add(self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 240) -> float:
        """Wait until the agent answers; returns the boot time in seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name}: qemu exited\n{self.console_tail()}")
            if self._sock is None:
                try:
                    self._connect()
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
            with contextlib.suppress(OSError):
                self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(10)
            _LIVE.discard(self.proc)
        self._disconnect()

    def console_tail(self, n: int = 40) -> str:
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # -- control channel ---------------------------------------------------------------------
    def _connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.ctl_path))
        self._sock = s
        self._reader = threading.Thread(target=self._read_loop, args=(s,), daemon=True)
        self._reader.start()

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        with self._lock:
            for box in self._pending.values():
                box["event"].set()
            self._pending.clear()

    def _read_loop(self, s: socket.socket) -> None:
        try:
            self._read_replies(s)
        finally:
            # the guest is gone (killed, or it fenced itself): fail what still waits
            with self._lock:
                for box in self._pending.values():
                    box["event"].set()
                self._pending.clear()

    def _read_replies(self, s: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    box = self._pending.pop(msg.get("id"), None)
                if box is not None:
                    box["reply"] = msg
                    box["event"].set()

    def _request(self, req: dict, timeout: float) -> dict:
        if self._sock is None:
            raise ConnectionError(f"{self.name}: not connected")
        rid = next(self._ids)
        box = {"event": threading.Event(), "reply": None}
        with self._lock:
            self._pending[rid] = box
        data = (json.dumps(dict(req, id=rid)) + "\n").encode()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            with self._lock:
                self._pending.pop(rid, None)
            raise ConnectionError(f"{self.name}: {exc}") from exc
        if not box["event"].wait(timeout):
            with self._lock:
                self._pending.pop(rid, None)
            raise TimeoutError(f"{self.name}: no reply to {req.get('op')} in {timeout}s")
        if box["reply"] is None:
            raise ConnectionError(f"{self.name}: channel closed")
        return box["reply"]

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
