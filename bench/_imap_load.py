"""IMAP load for bench/mail_bench.py: logins/s and FETCH messages/s over several connections.

Python's imaplib against the real dovecot (STARTTLS, the cluster CA trusted, as clients do):
each connection logs in and out in a loop for the logins figure, then logs in once and
fetches the bench's messages (BODY.PEEK[], 50 per command) in a loop for the FETCH figure.
"""

from __future__ import annotations

import imaplib
import threading
import time

from _roles_helpers import PASSWORDS, tls_context


def _logins(host: str, user: str, ctx, until: float, counts: list) -> None:
    n = 0
    while time.monotonic() < until:
        with imaplib.IMAP4(host, 143, timeout=30) as imap:
            imap.starttls(ssl_context=ctx)
            imap.login(user, PASSWORDS[user])
            imap.logout()
        n += 1
    counts.append(n)


def _fetches(host: str, user: str, ctx, subject: str, until: float, counts: list) -> None:
    n = 0
    with imaplib.IMAP4(host, 143, timeout=30) as imap:
        imap.starttls(ssl_context=ctx)
        imap.login(user, PASSWORDS[user])
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "SUBJECT", f'"{subject}"')
        nums = data[0].split()
        if not nums:
            raise RuntimeError(f"no message with subject {subject!r} in {user}'s INBOX")
        batches = [nums[i : i + 50] for i in range(0, len(nums), 50)]
        while time.monotonic() < until:
            for batch in batches:
                _, parts = imap.fetch(b",".join(batch).decode(), "(BODY.PEEK[])")
                n += sum(1 for p in parts if isinstance(p, tuple))
                if time.monotonic() >= until:
                    break
    counts.append(n)


def _parallel(target, connections: int, seconds: float, *args) -> float:
    counts: list[int] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=target, args=(*args, until, counts)) for _ in range(connections)
    ]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if len(counts) != connections:
        raise RuntimeError(f"{connections - len(counts)} IMAP connection(s) failed")
    return round(sum(counts) / (time.monotonic() - t0), 1)


def imap_figures(host: str, user: str, subject: str, connections: int, seconds: float) -> dict:
    ctx = tls_context()
    return {
        "host": host,
        "connections": connections,
        "seconds": seconds,
        "logins_per_s": _parallel(_logins, connections, seconds, host, user, ctx),
        "fetch_messages_per_s": _parallel(_fetches, connections, seconds, host, user, ctx, subject),
    }
