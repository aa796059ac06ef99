"""The one connection to a guest's control agent, shared by every caller (issue 11).

qemu's socket chardev serves one client at a time, and under TCG it noticed a client's
hang-up late or not at all: a connection per command left later callers blocked in
connect() for minutes. So one detached process per guest (started by `Guest.boot`) holds the
single connection, the way the vm tier's runner does, and serves any number of callers on a
unix socket of its own: a caller sends one JSON request line and reads one reply line. It
exits when the guest's qemu does.

Usage: python3 -m mclab.guest_mux CTL_SOCKET MUX_SOCKET QEMU_PID
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))
from channel import Channel


def connect(ctl: Path, pid: int) -> Channel:
    while True:
        if not _alive(pid):
            sys.exit(0)
        try:
            return Channel("guest", ctl)
        except OSError:
            time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def serve_one(channel: Channel, conn: socket.socket) -> None:
    with conn, conn.makefile("rwb") as stream:
        line = stream.readline()
        try:
            req = json.loads(line)
            timeout = float(req.get("timeout") or 300) + 15
            reply = channel.request(req, timeout)
        except (ValueError, ConnectionError, TimeoutError) as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply.pop("id", None)
        with contextlib.suppress(OSError):
            stream.write((json.dumps(reply) + "\n").encode())
            stream.flush()


def main(argv: list[str]) -> int:
    ctl, mux, pid = Path(argv[0]), Path(argv[1]), int(argv[2])
    channel = connect(ctl, pid)
    mux.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(mux))
    server.listen(64)
    server.settimeout(1)
    while _alive(pid):
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        threading.Thread(target=serve_one, args=(channel, conn), daemon=True).start()
    mux.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
