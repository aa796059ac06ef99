"""Issue 11 item 4: mx1, a qemu guest on DRBD dual primary + OCFS2, loses its power while an
MTA-like sender delivers to the pair through DNS round robin (tests/lab/_mail_flow).

- mx1's service IP moves to mx2 and DNS names mx2 only;
- mx2 is never taken out of DNS, and none of its daemons is restarted, during the OCFS2
  recovery pause (its writes wait until o2cb has evicted mx1);
- every accepted message is in the mailbox exactly once (IMAP on mx2);
- mx1 boots back and rejoins by itself: the unit mailcluster-store brings DRBD up, resyncs,
  promotes and mounts, the mail services and heartbeat start after it, and the master
  restores DNS.
"""

from __future__ import annotations

import json
import uuid

from _mail_flow import Sender
from _power_cut import SVC, assert_delivered_once, boot_back, power_cut
from _roles_helpers import imap_header
from _selfheal_helpers import DNS_SERVERS, dns_restored
from mc_wait import wait_for

USER = "bob@example.test"


def test_power_cut_of_mx1_under_mail_then_it_rejoins_by_itself(seed_lab, converged):
    lab = seed_lab
    wait_for(dns_restored, 300, 2, what="DNS as pillar says before the cut")
    tag = uuid.uuid4().hex[:8]
    # a guest under TCG takes seconds per SMTP dialogue: a real MTA's patience, not 3 s
    sender = Sender(DNS_SERVERS["ns1"], USER, tag, interval=0.5, smtp_timeout=60, retry_delay=2)
    sender.start()
    try:
        wait_for(lambda: len(sender.accepted()) >= 5, 300, 1, what="5 messages accepted")
        cut = power_cut(lab, "mx1", "mx2", sender, USER)
        back = boot_back(lab, "mx1")
    finally:
        sender.stop(drain_timeout=180)
    print("\nseed power cut:", json.dumps({**cut, **back}, default=str, indent=1))

    assert cut["kill_to_ip_answered_s"] is not None, "mx1's IP never answered on mx2"
    assert cut["kill_to_dns_repointed_s"] is not None, "DNS still names mx1"
    assert cut["kill_to_first_delivery_on_survivor_s"] is not None, "nothing delivered on mx2"
    assert cut["dns_samples"] > 0
    assert cut["survivor_left_dns"] == [], "mx2 was taken out of DNS during the OCFS2 pause"
    assert cut["survivor_units_after"] == cut["survivor_units_before"], "mx2 restarted a daemon"
    assert back["boot_to_services_s"] is not None, "mx1's services did not start by themselves"
    assert back["boot_to_store_in_sync_s"] is not None, "mx1's store not in sync and mounted"
    assert back["boot_to_dns_restored_s"] is not None, "DNS not restored after mx1 returned"

    accepted = assert_delivered_once(sender, tag, USER, SVC["mx2"], timeout=300)
    # mx1 serves the same mailbox again
    assert set(imap_header(SVC["mx1"], USER, "MESSAGE-ID", timeout=60)) >= accepted
