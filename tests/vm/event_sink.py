"""A stand-in for the minion event bus in the masterless guests (stdlib only).

``salt-call --local`` fires events (``event.send``) into the local minion's IPC pull socket;
without a running salt-minion nobody listens there and ``event.send`` returns False. This
binds that socket and appends every raw frame to a log, so the vm tests can see that an
event with a given tag was fired. Usage: ``python3 event_sink.py SOCKET LOGFILE``.
"""

import os
import socket
import sys
import threading


def serve(path: str, logfile: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    lock = threading.Lock()

    def handle(conn: socket.socket) -> None:
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                with lock, open(logfile, "ab") as fh:
                    fh.write(chunk)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
