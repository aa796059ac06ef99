"""A power cut of one mail guest under mail, watched from the host: the measurements the seed
tier's kill test asserts on and bench/seed_bench.py reports (issue 11 items 4 and 6).

While a Sender (tests/lab/_mail_flow) delivers through DNS round robin, ``power_cut`` kills
the guest and records, each as seconds after the kill: the victim's service IP answering
IMAP again (on the peer), DNS naming the peer only, the first message accepted by the
survivor and readable there by IMAP (the OCFS2 recovery pause: the survivor's writes wait
until o2cb has evicted the dead node), and whether the survivor's own IP ever left DNS or its
daemons were restarted. ``boot_back`` then starts the guest and records, from its start,
DRBD in sync, the store mounted, the mail services and the mover up, and DNS as pillar says,
with nothing done by hand.
"""

from __future__ import annotations

import contextlib
import threading
import time

import mc_wait
from _roles_helpers import imap_header
from _selfheal_helpers import (
    DNS_SERVERS,
    MX1_SVC,
    MX2_SVC,
    a_records,
    dns_restored,
    dns_without,
    imap_answers,
)

SVC = {"mx1": MX1_SVC, "mx2": MX2_SVC}
#: the daemons that must keep running on the survivor (their main PIDs are compared)
SURVIVOR_UNITS = ("postfix@-", "dovecot", "heartbeat", "mailcluster-store")
MOUNT = "/var/vmail"


def main_pids(lab, node: str) -> dict[str, str]:
    out = {}
    for unit in SURVIVOR_UNITS:
        proc = lab.run(node, "systemctl", "show", "-p", "MainPID,ActiveEnterTimestamp", unit)
        out[unit] = proc.stdout.strip()
    return out


class DnsWatch(threading.Thread):
    """Samples every DNS server's answer for ``name``: each answer without ``kept`` (an
    address that must never leave DNS) is recorded."""

    def __init__(self, name: str, kept: str, every: float = 0.25):
        super().__init__(daemon=True)
        self.name_, self.kept, self.every = name, kept, every
        self.kept_missing: list[tuple[float, str, set]] = []
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            for server in DNS_SERVERS.values():
                got = a_records(server, self.name_)
                if got is not None:
                    self.samples += 1
                    if self.kept not in got:
                        self.kept_missing.append((time.time(), server, got))
            time.sleep(self.every)

    def stop(self):
        self._halt.set()
        self.join(10)


def seconds_until(pred, since: float, timeout: float, every: float) -> float | None:
    """Seconds from ``since`` (a monotonic time) until ``pred()`` held, polled by the tests'
    one loop (mc_wait); None if it did not within ``timeout`` seconds of ``since``: the run
    goes on to measure the rest, and the caller asserts on what it needs."""
    left = timeout - (time.monotonic() - since)
    try:
        # a guest or a server busy answers with an error: ask again
        mc_wait.wait_for(pred, max(left, 0.1), every, ignore=(Exception,))
    except AssertionError:
        return None
    return round(time.monotonic() - since, 2)


def power_cut(lab, victim: str, survivor: str, sender, user: str, watch_s: float = 150):
    """Kill ``victim`` while ``sender`` runs; watch for ``watch_s`` seconds. Returns the
    figures (seconds after the kill; None: not seen) and what the checks need."""
    before = main_pids(lab, survivor)
    dns = DnsWatch("mail.example.test", SVC[survivor])
    dns.start()
    t_kill, t0 = time.time(), time.monotonic()
    lab.lab.kill(victim)
    ip_answered = seconds_until(
        lambda: imap_answers(SVC[victim], connect_timeout=0.3), t0, 120, 0.1
    )
    dns_moved = seconds_until(lambda: dns_without(SVC[victim]), t0, 180, 0.2)

    def first_delivery():
        # when a message accepted after the kill is first seen in the INBOX (postfix accepts
        # into its local queue during the OCFS2 pause: the acceptance time says nothing)
        ids = set(imap_header(SVC[survivor], user, "MESSAGE-ID", timeout=60))
        seen = any(m.accepted_at > t_kill and m.message_id in ids for m in sender.accepted())
        return time.time() if seen else None

    delivered_at = None
    while time.monotonic() - t0 < watch_s:
        if delivered_at is None:
            with contextlib.suppress(OSError):
                delivered_at = first_delivery()
        time.sleep(2)
    dns.stop()
    return {
        "t_kill": t_kill,
        "kill_to_ip_answered_s": ip_answered,
        "kill_to_dns_repointed_s": dns_moved,
        "kill_to_first_delivery_on_survivor_s": (
            round(delivered_at - t_kill, 2) if delivered_at else None
        ),
        "survivor_left_dns": dns.kept_missing[:5],
        "dns_samples": dns.samples,
        "survivor_units_before": before,
        "survivor_units_after": main_pids(lab, survivor),
    }


def store_ready(lab, node: str) -> bool:
    drbd = lab.run(node, "cat", "/proc/drbd", timeout=60).stdout
    mnt = lab.run(node, "findmnt", "-n", "-o", "FSTYPE", MOUNT, timeout=60).stdout.strip()
    return "ro:Primary/Primary ds:UpToDate/UpToDate" in drbd and mnt == "ocfs2"


def services_up(lab, node: str) -> bool:
    units = ("mailcluster-store", "postfix", "dovecot", "heartbeat")
    proc = lab.run(node, "systemctl", "is-active", *units, timeout=60)
    return proc.stdout.split() == ["active"] * len(units)


def boot_back(lab, node: str, timeout: float = 900) -> dict:
    """Start ``node`` again and wait, without touching it, for its services, its store in
    sync and DNS as pillar says. Seconds after the start (None: not within ``timeout``)."""
    t0 = time.monotonic()
    lab.lab.start(node)
    return {
        "boot_to_services_s": seconds_until(lambda: services_up(lab, node), t0, timeout, 5),
        "boot_to_store_in_sync_s": seconds_until(lambda: store_ready(lab, node), t0, timeout, 5),
        "boot_to_dns_restored_s": seconds_until(dns_restored, t0, timeout, 1),
    }


def assert_delivered_once(sender, tag: str, user: str, imap_ip: str, timeout: float) -> set:
    """Every message ``sender`` had accepted is in ``user``'s INBOX exactly once (IMAP on
    ``imap_ip``, Message-IDs of this run's ``tag``), within ``timeout`` s; returns them."""
    accepted = {m.message_id for m in sender.accepted()}
    assert len(accepted) == len(sender.messages), "a message was never accepted"

    def copies():
        ids = imap_header(imap_ip, user, "MESSAGE-ID", timeout=60)
        return {i: ids.count(i) for i in set(ids) if i.startswith(f"<flow-{tag}-")}

    seen = mc_wait.wait_for(
        lambda: (c := copies()) and accepted <= set(c) and c,
        timeout,
        5,
        what="every accepted message in the INBOX",
    )
    twice = {mid: n for mid, n in seen.items() if n != 1}
    assert not twice, f"delivered more than once: {twice}"
    assert set(seen) == accepted, set(seen) ^ accepted
    return accepted
