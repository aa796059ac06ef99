"""The control channel to a guest: JSON lines with ``guest/mc-agent`` over the unix socket that
qemu wires to the guest's virtio-serial port ``mc.ctl`` (requests carry an ``id``; replies
come back in any order with the same ``id``). Also what a guest command returns (``Result``)
and the error ``check`` raises. Used by ``runner.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path


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


class Channel:
    """One connection to a guest's agent; ``OSError`` when the socket is not there (yet)."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(str(path))
        except OSError:
            self._sock.close()
            raise
        self._ids = itertools.count(1)
        self._pending: dict = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read_loop, daemon=True).start()

    def close(self) -> None:
        # shutdown first: it wakes the reader thread blocked in recv(); a bare close() would
        # leave it blocked on the old descriptor, whose number the next socket may reuse
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._fail_pending()

    def _fail_pending(self) -> None:
        with self._lock:
            for box in self._pending.values():
                box["event"].set()
            self._pending.clear()

    def _read_loop(self) -> None:
        try:
            self._read_replies()
        finally:
            # the guest is gone (killed, or it fenced itself): fail what still waits
            self._fail_pending()

    def _read_replies(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
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

    def request(self, req: dict, timeout: float) -> dict:
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
