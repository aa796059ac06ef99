"""
keepalived as the pair's mover (pillar ha:mover: keepalived, docs/keepalived.md), end to end
in the nspawn lab: the switch from heartbeat by a pillar override and `state.apply ha`, with
no moment without the service IPs; a hard kill of mx1 -> its IP answered on mx2 (VRRPv3), DNS
re-pointed by the same beacon/reactor/runner path and witnesses as with heartbeat; mx1 back
-> the IP goes home and DNS is restored; the switch back to heartbeat at the end (the lab is
left as it was).

Opt-in (MC_KEEPALIVED=1): it takes about 3 minutes. Needs keepalived in the lab image
(lab/packages.txt; an image built before it was added has to be rebuilt: lab/lab down, up).
"""

from __future__ import annotations

import os
import time

import pytest
from _ip_watch import IpWatch
from _mover import movers_active, own_ips_home, switch
from _selfheal_helpers import (
    DNS_SERVERS,
    MX1_SVC,
    MX2_SVC,
    audit,
    converged_selfheal_lab,
    dns_restored,
    dns_server_without,
    imap_answers,
    steady,
    wait_for,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.environ.get("MC_KEEPALIVED") != "1", reason="opt-in: MC_KEEPALIVED=1 (about 3 min)"
    ),
]


@pytest.fixture(scope="module")
def on_keepalived(lab):
    converged_selfheal_lab(lab)
    steady(lab)
    if lab.run("mx1", "dpkg", "-s", "keepalived").returncode != 0:
        # the pkg state installs it from the image's repository; an older image lacks it
        proc = lab.run("mx1", "apt-cache", "policy", "keepalived")
        if "Candidate: (none)" in proc.stdout or not proc.stdout.strip():
            pytest.fail("keepalived is not in the lab image: rebuild it (lab/lab down; up)")
    watch = IpWatch(lab)
    t0 = time.time()
    try:
        switch(lab, "keepalived")
        own_ips_home(lab)
        time.sleep(1)
        gaps = {ip: watch.windows(ip, t0, time.time()) for ip in (MX1_SVC, MX2_SVC)}
    finally:
        watch.stop(lab)
    yield lab, gaps
    lab.ensure_running("mx1")
    switch(lab, "heartbeat")
    own_ips_home(lab)
    steady(lab)


def test_switch_leaves_no_moment_without_the_ips(on_keepalived):
    _lab, gaps = on_keepalived
    for ip, (_twice, none) in gaps.items():
        assert none < 0.5, f"{ip} was on no node for {none} s during the switch: {gaps}"


def test_kill_moves_ip_and_dns_then_failback(on_keepalived):
    lab, _gaps = on_keepalived
    wall0, t0 = time.time(), time.monotonic()
    lab.lab.kill("mx1")
    wait_for(lambda: imap_answers(MX1_SVC, connect_timeout=0.3), 10, what="mx1's IP on mx2")
    took = time.monotonic() - t0
    assert MX1_SVC in lab.run("mx2", "ip", "-o", "addr", "show").stdout
    for ip in DNS_SERVERS.values():
        wait_for(lambda ip=ip: dns_server_without(ip, MX1_SVC), 30, what="DNS re-pointed")
    # the runner writes its record once both DNS servers serve the change: wait for it
    wait_for(
        lambda: any(e["event"] == "done" for e in audit(lab, wall0, "mx1")),
        20,
        interval=0.5,
        what="the runner's failover record",
    )
    done = [e for e in audit(lab, wall0, "mx1") if e["event"] == "done"]
    # the witnesses: the master lost mx1 and keepalived on mx2 said dead (via heartbeat.*)
    assert "dead" in str(done[0].get("witnesses")), done[0]
    print(f"kill -> IMAP on mx1's IP: {took:.2f} s; trigger {done[0].get('trigger')}")
    time.sleep(11)  # the failover's hold-down: a failback inside it is refused on purpose
    lab.lab.start("mx1")
    lab.ensure_running("mx1")
    assert movers_active(lab, "mx1")["keepalived"] == "active"
    own_ips_home(lab, timeout=120)
    wait_for(dns_restored, 120, interval=0.5, what="DNS restored after mx1's return")
