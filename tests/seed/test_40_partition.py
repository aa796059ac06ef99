"""Issue 11 item 5: the pair's link cut with both guests alive (`lab partition mx1 mx2`: DRBD,
o2cb and heartbeat all ride it), while a sender delivers through DNS round robin.

The policy (docs/storage.md, "Partition"): DRBD `fencing resource-and-stonith` freezes I/O on
both sides; each side's fence-peer handler asks the master's arbiter engine, which reaches
both nodes: mx1 (the partition keeper) is granted the resource and goes on writing, mx2 is
denied and reboots at once. mx2's store finds no peer at its boot and stays out. Once the
link is back, the master starts mx2's store again: DRBD resyncs from mx1 (no split brain:
mx2 wrote nothing after the cut), OCFS2 mounts, the services start, DNS follows.

Checked: the master's verdicts (its log), mx2 rebooted and never Primary-and-mounted while
cut off, mx1 delivers during the cut, no `Split-Brain detected` on either node, both sides
UpToDate again, and every accepted message in the mailbox exactly once.
"""

from __future__ import annotations

import calendar
import json
import time
import uuid

from _mail_flow import Sender
from _power_cut import (
    MOUNT,
    SVC,
    assert_delivered_once,
    seconds_until,
    services_up,
    store_ready,
)
from _roles_helpers import imap_header
from _selfheal_helpers import DNS_SERVERS, dns_restored
from mc_wait import wait_for

USER = "bob@example.test"
#: how long the link stays cut: mx2's reboot and its store's wait for the peer fit in it
CUT_S = 240


def _boot_id(lab, node):
    return lab.run(node, "cat", "/proc/sys/kernel/random/boot_id", timeout=60).stdout.strip()


def _verdicts(lab, since):
    """The arbiter's verdict lines in the master's log since ``since`` (epoch seconds)."""
    text = lab.run("salt", "cat", "/var/log/salt/master").stdout
    out = []
    for line in text.splitlines():
        if "mcstore_arbiter:" not in line or " asks for " not in line:
            continue
        try:
            # the master's log stamps are UTC
            stamp = calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if stamp >= int(since):
            out.append(line)
    return out


def _mounted_primary(lab, node):
    drbd = lab.run(node, "cat", "/proc/drbd", timeout=60).stdout
    mnt = lab.run(node, "findmnt", "-n", "-o", "FSTYPE", MOUNT, timeout=60).stdout.strip()
    return "ro:Primary/" in drbd and mnt == "ocfs2"


def _split_brain_logged(lab, node):
    log = lab.run(node, "journalctl", "-k", "-b", "-o", "cat", "--no-pager", timeout=60).stdout
    return "Split-Brain detected" in log


def test_partition_of_the_pair_keeps_mx1_writing_and_mx2_rejoins_without_split_brain(
    seed_lab, converged
):
    lab = seed_lab
    wait_for(dns_restored, 300, 2, what="DNS as pillar says before the cut")
    wait_for(lambda: store_ready(lab, "mx1") and store_ready(lab, "mx2"), 300, 5,
             what="both stores Primary/Primary UpToDate and mounted")  # fmt: skip
    boot_before = _boot_id(lab, "mx2")
    tag = uuid.uuid4().hex[:8]
    sender = Sender(DNS_SERVERS["ns1"], USER, tag, interval=0.5, smtp_timeout=60, retry_delay=2)
    sender.start()
    figures, verdicts, mx2_wrote = {}, [], []
    try:
        wait_for(lambda: len(sender.accepted()) >= 5, 300, 1, what="5 messages accepted")
        t_cut, t0 = time.time(), time.monotonic()
        assert lab.cli("partition", "mx1", "mx2").returncode == 0
        figures["cut_to_verdicts_s"] = seconds_until(
            lambda: len(_verdicts(lab, t_cut)) >= 2, t0, 120, 2
        )
        figures["cut_to_mx2_rebooted_s"] = seconds_until(
            lambda: _boot_id(lab, "mx2") != boot_before, t0, CUT_S, 5
        )

        def delivered_on_mx1():
            ids = set(imap_header(SVC["mx1"], USER, "MESSAGE-ID", timeout=60))
            return any(m.accepted_at > t_cut and m.message_id in ids for m in sender.accepted())

        figures["cut_to_delivery_on_mx1_s"] = seconds_until(delivered_on_mx1, t0, CUT_S, 5)
        # the rest of the cut: mx2 must never be Primary with the store mounted meanwhile
        while time.monotonic() - t0 < CUT_S:
            if _boot_id(lab, "mx2") != boot_before and _mounted_primary(lab, "mx2"):
                mx2_wrote.append(round(time.monotonic() - t0, 1))
            time.sleep(10)
        verdicts = _verdicts(lab, t_cut)
        t_heal = time.monotonic()
        assert lab.cli("heal").returncode == 0
        figures["heal_to_store_in_sync_s"] = seconds_until(
            lambda: store_ready(lab, "mx2"), t_heal, 900, 5
        )
        figures["heal_to_services_s"] = seconds_until(
            lambda: services_up(lab, "mx2"), t_heal, 900, 5
        )
        figures["heal_to_dns_restored_s"] = seconds_until(dns_restored, t_heal, 900, 2)
    finally:
        lab.cli("heal")
        sender.stop(drain_timeout=300)
    print("\nseed partition:", json.dumps(figures, indent=1), *verdicts, sep="\n")

    assert any("mx1 asks for r0: grant" in v for v in verdicts), verdicts
    assert not any("mx2 asks for r0: grant" in v for v in verdicts), verdicts
    assert figures["cut_to_mx2_rebooted_s"] is not None, "mx2 did not reboot after its denial"
    assert figures["cut_to_delivery_on_mx1_s"] is not None, "mx1 delivered nothing while cut"
    assert not mx2_wrote, f"mx2 was Primary with the store mounted while cut off: {mx2_wrote}"
    assert figures["heal_to_store_in_sync_s"] is not None, "mx2's store not back in sync"
    assert figures["heal_to_services_s"] is not None, "mx2's services did not start"
    assert figures["heal_to_dns_restored_s"] is not None, "DNS not restored after the heal"
    assert not _split_brain_logged(lab, "mx1"), "DRBD logged a split brain on mx1"
    assert not _split_brain_logged(lab, "mx2"), "DRBD logged a split brain on mx2"

    assert_delivered_once(sender, tag, USER, SVC["mx1"], timeout=600)
