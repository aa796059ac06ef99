"""Issue 11 items 2 and 3: one highstate converges the seed's cluster (the mail pair on DRBD
dual primary + OCFS2, as qemu guests), a second one changes nothing, and mail lands on the
real store: sent to one node, read on the other; delivered from both nodes at once to one
mailbox, every message exactly once and no dovecot index complaint."""

from __future__ import annotations

import threading
import time
import uuid

from _roles_helpers import (
    apply_all,
    imap_header,
    imap_subjects,
    new_message,
    send_message,
    state_results,
    wait_for,
)

GUESTS = ("mx1", "mx2")
MOUNT = "/var/vmail"
#: state IDs whose order the issue names: the store before the mail daemons, heartbeat last
MOUNTED = "storage-mount-volume-mount-mounted"
POSTFIX = "mail-postfix-service-postfix-service-running"
DOVECOT = "mail-dovecot-service-dovecot-service-running"
HEARTBEAT = "ha-service-heartbeat-service-running"
ORDERED = (MOUNTED, POSTFIX, DOVECOT, HEARTBEAT)


def _by_id(states: dict, state_id: str) -> dict:
    (hit,) = [v for k, v in states.items() if k.split("_|-")[1] == state_id]
    return hit


def test_one_highstate_converges_the_seed_cluster_in_order(seed_lab, converged):
    failed, _ = state_results(converged)
    assert not failed, "\n".join(failed)
    for node in GUESTS:
        states = converged[node]
        order = {s: _by_id(states, s)["__run_num__"] for s in ORDERED}
        assert order[MOUNTED] < order[POSTFIX] and order[MOUNTED] < order[DOVECOT], order
        assert max(order[POSTFIX], order[DOVECOT]) < order[HEARTBEAT], order
        drbd = seed_lab.run(node, "cat", "/proc/drbd").stdout
        assert "ro:Primary/Primary ds:UpToDate/UpToDate" in drbd, (node, drbd)
        mnt = seed_lab.run(node, "findmnt", "-n", "-o", "SOURCE,FSTYPE", MOUNT).stdout.split()
        assert mnt == ["/dev/drbd0", "ocfs2"], (node, mnt)
        for unit in ("postfix", "dovecot", "heartbeat"):
            active = seed_lab.run(node, "systemctl", "is-active", unit).stdout.strip()
            assert active == "active", (node, unit, active)


def test_second_highstate_changes_nothing(seed_lab, converged):
    ret, seconds = apply_all(seed_lab, timeout=3600)
    print(f"\nseed: second highstate in {seconds:.0f} s")
    failed, changed = state_results(ret)
    assert not failed, "\n".join(failed)
    assert not changed, changed


def test_sent_to_one_node_read_by_imap_on_the_other(seed_lab, converged):
    for writer, reader in (("mx1", "mx2"), ("mx2", "mx1")):
        subject = f"seed-{writer}-{uuid.uuid4().hex[:8]}"
        send_message(seed_lab.ip(writer), new_message("alice@example.test", subject))
        wait_for(
            lambda s=subject, r=reader: s in imap_subjects(seed_lab.ip(r), "alice@example.test"),
            120,
            2,
            what=f"{subject} (sent to {writer}) in IMAP on {reader}",
        )


def _message_ids(host: str, user: str) -> list[str]:
    return imap_header(host, user, "MESSAGE-ID", timeout=60)


def test_concurrent_delivery_to_one_mailbox_from_both_nodes(seed_lab, converged):
    """Both nodes deliver into bob's one Maildir at once (dovecot LMTP on each, OCFS2 between
    them): every accepted message is there once, both nodes list the same set, and neither
    dovecot logged index corruption."""
    user, per_node = "bob@example.test", 25
    since = seed_lab.run("mx1", "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    before = set(_message_ids(seed_lab.ip("mx1"), user))
    sent: dict[str, list[str]] = {n: [] for n in GUESTS}
    errors: list[BaseException] = []

    def send_from(node: str) -> None:
        try:
            for i in range(per_node):
                msg = new_message(user, f"seed-concurrent-{node}-{i}")
                send_message(seed_lab.ip(node), msg)
                sent[node].append(msg["Message-ID"])
        except BaseException as exc:
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=send_from, args=(n,)) for n in GUESTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    want = sent["mx1"] + sent["mx2"]

    def delivered():
        ids = [i for i in _message_ids(seed_lab.ip("mx2"), user) if i not in before]
        return ids if set(want) <= set(ids) else None

    wait_for(delivered, 300, 3, what=f"{len(want)} messages in {user}'s INBOX")
    print(f"\nseed: {len(want)} concurrent messages delivered in {time.monotonic() - t0:.0f} s")
    for node in GUESTS:
        ids = [i for i in _message_ids(seed_lab.ip(node), user) if i not in before]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        assert not dups, f"{node}: duplicated {dups}"
        assert sorted(ids) == sorted(want), f"{node}: {len(ids)} listed, {len(want)} sent"
        log = seed_lab.run(
            node, "journalctl", "--no-pager", "-q", "-u", "dovecot", "--since", since
        ).stdout
        bad = [
            line
            for line in log.splitlines()
            if any(w in line.lower() for w in ("corrupt", "broken", "fsck", "panic"))
        ]
        assert not bad, f"{node}: dovecot logged:\n" + "\n".join(bad[:20])
