"""
Self-healing end to end in the nspawn lab (issue 6): real heartbeat, BIND with TSIG,
postfix and dovecot, the master's reactor and the failover runner.

Needs a converged lab (`lab/lab salt '*' state.apply`). The tests restart the master when it
runs older reactor/runner code than the repository, apply `selfheal` on the mail pair, and
leave the cluster as they found it (mx1 running, DNS as pillar says).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from _ip_watch import IpWatch
from _mail_flow import Sender, delivered_copies, maildir_of
from _scale_pillar import scale_domains
from _selfheal_helpers import (
    CLUSTER_ZONE,
    DNS_SERVERS,
    MX1_SVC,
    MX2_SVC,
    a_records,
    audit,
    audit_tail,
    converged_selfheal_lab,
    dns_restored,
    dns_server_without,
    dns_without,
    holds,
    imap_answers,
    pair_settled,
    serial,
    smtp_answers,
    steady,
    wait_for,
)
from checks import nspawn_host

pytestmark = [pytest.mark.lab]


@pytest.fixture(scope="module")
def cluster(lab):
    converged_selfheal_lab(lab)
    steady(lab)
    yield lab
    lab.cli("heal")
    lab.run("salt", "systemctl", "start", "salt-master", timeout=120)
    steady(lab)


@pytest.fixture(autouse=True)
def back_to_steady(cluster):
    """Whatever a test left (a node killed, a DNS secondary standing in), the next one starts
    from the steady cluster: one failure does not take the rest of the file with it."""
    yield
    steady(cluster)


def _serials():
    zones = ("example.test", CLUSTER_ZONE)
    return {(s, z): serial(ip, z) for s, ip in DNS_SERVERS.items() for z in zones}


#: domains of the one-zone test; MC_SCALE=1: 1,000 (opt-in, several minutes)
SCALE_DOMAINS = 1000 if os.environ.get("MC_SCALE") == "1" else 20


def test_kill_mx1_fails_over_and_back(cluster):
    lab = cluster
    t0 = time.time()
    lab.lab.kill("mx1")
    # heartbeat moves the IP; IMAP and SMTP on mx1's service IP are answered by mx2
    wait_for(lambda: imap_answers(MX1_SVC), 30, what="IMAP on mx1's service IP")
    wait_for(lambda: smtp_answers(MX1_SVC), 10, what="SMTP on mx1's service IP")
    assert MX1_SVC in lab.run("mx2", "ip", "-o", "addr", "show").stdout
    # DNS at ns1 and ns2 no longer returns mx1's IP, and still returns mx2's
    wait_for(lambda: dns_without(MX1_SVC), 30, what="DNS without mx1's IP", lab=lab)
    for ip in DNS_SERVERS.values():
        assert a_records(ip, "mail.example.test") == {MX2_SVC}
        assert a_records(ip, "mx1.example.test") == {MX2_SVC}
    t_dns = time.time() - t0

    def done_events():
        return [e for e in audit(lab, t0, "mx1") if e["event"] == "done"]

    # `done` follows the DNS change once the runner has checked where mx1's IP is
    done = wait_for(done_events, 30, interval=0.5, what="the done audit event", lab=lab)[0]
    assert any(e["event"] == "started" for e in audit(lab, t0, "mx1"))
    assert done["witnesses"]["master"]["answered"] is False
    assert done["witnesses"]["peer"]["says_dead"] is True
    assert done["ip"]["holder"] == "mx2"
    # layout cluster: the one cluster zone changed, by one UPDATE
    assert done["dns"]["changed"] == [CLUSTER_ZONE], done["dns"]
    # the DNS primary's grain keeps a highstate of the dns role in step
    grain = lab.salt_json("ns1", "grains.get", "mailcluster_dns_withdrawn")
    assert grain["ns1"] == ["mx1"]
    # mx1 returns: DNS restored once it is healthy, the IP back on mx1 (auto_failback)
    t1 = time.time()
    lab.lab.start("mx1")
    wait_for(dns_restored, 120, interval=0.1, what="DNS restored after mx1 returned", lab=lab)
    wait_for(
        lambda: [e for e in audit(lab, t1, "mx1") if e["event"] == "failback"],
        30,
        interval=0.5,
        what="the failback audit event",
        lab=lab,
    )
    wait_for(
        lambda: MX1_SVC in lab.run("mx1", "ip", "-o", "addr", "show").stdout,
        60,
        interval=0.5,
        what="mx1's IP back on mx1",
    )
    print(f"kill -> DNS without mx1 on both servers: {t_dns:.2f} s")


def _zone_type(lab, node: str, zone: str = "example.test") -> str:
    out = lab.run(node, "rndc", "zonestatus", zone, timeout=60).stdout
    return next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("type:")), ""
    )


def _dns_node_report(lab, node: str) -> str:
    """What a DNS node serves and holds on disk, for a failure message."""
    script = (
        "cd /var/lib/bind/mailcluster && ls -la --time-style=+%T.%N"
        " && for z in example.test sales.test cluster.test; do"
        ' echo "== $z: served $(dig +short @127.0.0.1 $z SOA)"; rndc zonestatus $z;'
        " grep -m1 -A1 SOA db.$z; done; journalctl -u named --no-pager -n 40"
    )
    return f"\n{node}:\n" + lab.run(node, "sh", "-c", script, timeout=60).stdout


def test_whole_dc1_lost_with_the_dns_primary(cluster):
    """dc1 (mx1 and ns1, the DNS primary) dies at once: ns2 is promoted after both witnesses
    agree, the names point at dc2's node; when dc1 returns, ns1 takes the records over with
    higher serials and ns2 is a secondary again."""
    lab = cluster
    ns1, ns2 = DNS_SERVERS["ns1"], DNS_SERVERS["ns2"]
    t0 = time.time()
    lab.lab.kill("mx1")
    lab.lab.kill("ns1")
    wait_for(lambda: dns_server_without(ns2, MX1_SVC), 90, what="ns2 without mx1's IP", lab=lab)
    t_dns = time.time() - t0
    assert a_records(ns2, "mail.example.test") == {MX2_SVC}
    assert a_records(ns2, "mx1.sales.test") == {MX2_SVC}
    wait_for(lambda: imap_answers(MX1_SVC), 30, what="IMAP on mx1's service IP")
    promoted = [e for e in audit(lab, t0, "ns1") if e["event"] == "dns_promoted"]
    assert [e["node_acting"] for e in promoted] == ["ns2"]
    assert promoted[0]["witnesses"]["master"]["answered"] is False
    assert promoted[0]["witnesses"]["secondary"] == {"node": "ns2", "answered": True, "soa": None}
    assert _zone_type(lab, "ns2") == "primary"
    # a highstate of ns2 keeps it the acting primary: nothing to change
    proc = lab.salt("ns2", "state.apply", "test=True", "--out=json", "--static")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    states = json.loads(proc.stdout)["ns2"]
    changes = {k: v["changes"] for k, v in states.items() if v["changes"]}
    assert not changes, f"{changes}{_dns_node_report(lab, 'ns2')}{audit_tail(lab)}"

    # dc1 returns: ns1 takes the records (serials above ns2's), ns2 becomes a secondary
    t1 = time.time()
    lab.ensure_running("ns1")
    lab.ensure_running("mx1")
    restored = wait_for(
        lambda: [e for e in audit(lab, t1, "ns1") if e["event"] == "dns_restored"],
        120,
        interval=0.5,
        what="the dns_restored audit event",
        lab=lab,
    )[0]
    assert restored["node_acting"] == "ns2"
    assert all(restored["serials"][z] > restored["serial_floor"][z] for z in restored["serials"])
    assert _zone_type(lab, "ns2") == "secondary"
    assert "mailcluster_dns_acting_primary" not in lab.salt_json("ns2", "grains.items")["ns2"]
    wait_for(dns_restored, 120, interval=0.2, what="DNS restored on both servers", lab=lab)
    for zone in ("example.test", "sales.test", "cluster.test"):
        wait_for(
            lambda z=zone: serial(ns2, z) == serial(ns1, z),
            10,
            what=f"ns2 serving ns1's serial of {zone}",
        )
    status = json.loads(lab.salt_run("mailcluster_failover.status", "--out=json").stdout)
    assert status["dns_acting"] is None
    assert status["dns_primary"] == "ns1"
    print(f"kill of dc1 -> ns2 without mx1: {t_dns:.2f} s; restore took {restored['seconds']} s")


def test_node_without_its_store_gives_its_ip_to_the_peer(cluster):
    """The Maildir store goes away on mx1: heartbeat stops with postfix and dovecot (the mail
    role's guard), so mx2 serves mx1's service IP instead of mx1 refusing mail on it."""
    lab = cluster
    units = ["heartbeat", "postfix", "dovecot"]
    lab.run("mx1", "systemctl", "stop", "var-vmail.mount", timeout=60)
    try:
        mx1 = nspawn_host("mx1")
        running = [u for u in units if mx1.service(u).is_running]
        assert running == [], f"still running on mx1 without its store: {running}"
        wait_for(
            lambda: MX1_SVC in lab.run("mx2", "ip", "-o", "addr", "show").stdout,
            30,
            interval=0.5,
            what="mx1's IP on mx2",
        )
        wait_for(lambda: imap_answers(MX1_SVC), 30, what="IMAP on mx1's IP, from mx2")
        assert smtp_answers(MX1_SVC)
    finally:
        # starting the units mounts the store again (RequiresMountsFor)
        lab.run("mx1", "systemctl", "start", *units, timeout=120)
    assert lab.run("mx1", "mountpoint", "-q", "/var/vmail").returncode == 0
    wait_for(
        lambda: MX1_SVC in lab.run("mx1", "ip", "-o", "addr", "show").stdout,
        60,
        interval=0.5,
        what="mx1's IP back on mx1",
    )
    assert dns_restored()


def test_forged_event_from_ns2_is_refused(cluster):
    lab = cluster
    before = _serials()
    t0 = time.time()
    payload = {"node": "mx2", "peer": "mx1", "kind": "heartbeat", "old": "active", "new": "dead"}
    proc = lab.run(
        "ns2",
        "salt-call",
        "event.send",
        "salt/beacon/mx2/mailcluster_ha/heartbeat/mx1",
        json.dumps(payload),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def refused():
        return [e for e in audit(lab, t0, "mx1") if e["event"] == "refused"]

    rec = wait_for(refused, 30, interval=0.5, what="a refused audit event")[0]
    assert rec["sender"] == "ns2"
    assert "answered test.ping" in rec["reason"]
    assert not [e for e in audit(lab, t0, "mx1") if e["event"] in ("started", "done")]
    assert _serials() == before
    assert dns_restored()


def test_partition_is_arbitrated_by_the_master(cluster):
    """mx1 and mx2 lose each other, both still reach the master: heartbeat on each side takes
    the other's service IP, so each address is on the network twice. The master settles it:
    heartbeat stops on mx2 (the keeper is the first of the pair), mx1 serves both addresses,
    DNS is left alone; a highstate of mx2 meanwhile keeps heartbeat stopped. After the heal,
    heartbeat starts on mx2 again and its address comes back to it, with no stretch where
    neither node holds an address (heartbeat's own partition merge restarts both sides:
    10-15 s with no address anywhere). The windows are printed for the session note."""
    lab = cluster
    before = _serials()
    watch = IpWatch(lab)
    time.sleep(1)
    t0 = time.time()
    proc = lab.cli("partition", "mx1", "mx2")
    assert proc.returncode == 0, proc.stderr
    try:

        def arbitrated():
            return [e for e in audit(lab, t0, "mx2") if e["event"] == "partition"]

        rec = wait_for(arbitrated, 40, interval=0.5, what="the partition audit", lab=lab)[0]
        assert rec["keeper"] == "mx1" and rec["standby"] == "mx2", rec
        wait_for(lambda: holds(lab, "mx2") == set(), 15, interval=0.2, what="mx2 holds none")
        assert holds(lab, "mx1") == {MX1_SVC, MX2_SVC}
        assert not nspawn_host("mx2").service("heartbeat").is_running, "heartbeat on the standby"
        assert _serials() == before, "DNS changed for a partition"
        # a highstate of the ha role on the standby node leaves heartbeat stopped
        ret = lab.salt_json("mx2", "state.apply", "ha")
        assert all(r["result"] for r in ret["mx2"].values()), ret
        assert not nspawn_host("mx2").service("heartbeat").is_running, "heartbeat on the standby"
        assert holds(lab, "mx2") == set()
        t_cut_end = time.time()
    finally:
        lab.cli("heal")
    t_heal = time.time()

    def home():
        return holds(lab, "mx1") == {MX1_SVC} and holds(lab, "mx2") == {MX2_SVC}

    wait_for(home, 90, interval=0.3, what="each address back on its owner", lab=lab)
    time.sleep(2)
    healed = [e for e in audit(lab, t_heal, "mx2") if e["event"] == "partition-healed"]
    assert healed, audit_tail(lab)
    assert nspawn_host("mx2").service("heartbeat").is_running, "heartbeat not back on mx2"
    grains = lab.salt_json("mx2", "grains.get", "mailcluster_ha_standby")
    assert not grains["mx2"], grains
    watch.stop(lab)
    end = time.time()
    figures = {}
    for ip in (MX1_SVC, MX2_SVC):
        twice_cut, _ = watch.windows(ip, t0, t_cut_end)
        twice_heal, none_heal = watch.windows(ip, t_heal, end)
        figures[ip] = {
            "twice_cut_s": twice_cut,
            "twice_heal_s": twice_heal,
            "none_heal_s": none_heal,
        }
    print(f"partition windows: {figures}; arbitrated after {rec['time'] - t0:.2f} s")
    for f in figures.values():
        # heartbeat's deadtime (2 s) plus the beacon, the verification and the stop
        assert f["twice_cut_s"] < 12, figures
        assert f["twice_heal_s"] < 1.0, figures
        # a failback hands the address over: release, then take, within a second
        assert f["none_heal_s"] < 1.5, figures
    assert _serials() == before or dns_restored()


@pytest.mark.parametrize("cut_s", [3, pytest.param(6, marks=pytest.mark.labfull)])
def test_a_short_partition_settles_by_itself(cluster, cut_s):
    """A cut that heals before (3 s) or while (6 s) the master arbitrates: heartbeat's own
    merge restarts both sides, the master leaves it alone or has stopped mx2, and the pair
    ends whole: heartbeat running on both nodes, no standby grain, each service IP on its
    owner only. The stretch with no node holding an address is printed (the merge's cost).
    Before the fix a heartbeat stayed down after the merge, or the standby grain stayed set
    with heartbeat stopped on mx2, and an address stayed on the wrong node for good."""
    lab = cluster
    watch = IpWatch(lab)
    time.sleep(1)
    assert lab.cli("partition", "mx1", "mx2").returncode == 0
    try:
        time.sleep(cut_s)
    finally:
        lab.cli("heal")
    t_heal = time.time()
    took = pair_settled(lab)
    grains = lab.salt_json("mx*", "grains.get", "mailcluster_ha_standby")
    assert not any(grains.values()), grains
    watch.stop(lab)
    time.sleep(0.5)
    none = {ip: watch.windows(ip, t_heal, time.time())[1] for ip in (MX1_SVC, MX2_SVC)}
    print(f"partition of {cut_s} s: pair settled {took:.1f} s after the heal; no holder: {none}")


@pytest.mark.labfull
def test_master_down_while_mx1_dies(cluster):
    """Heartbeat moves the IP without the master; when the master returns, DNS follows.
    A minion the master restart leaves deaf (Salt 3008.4) is restarted by the minion watchdog
    (lab: 40 s without the master's touch), hence the long wait."""
    lab = cluster
    lab.run("salt", "systemctl", "stop", "salt-master", timeout=120)
    try:
        lab.lab.kill("mx1")
        wait_for(lambda: imap_answers(MX1_SVC), 30, what="IMAP on mx1's IP without a master")
        time.sleep(2)
        assert dns_restored(), "DNS changed while the master was down"
        t_master = time.time()
    finally:
        lab.run("salt", "systemctl", "start", "salt-master", timeout=120)
    try:
        wait_for(lambda: dns_without(MX1_SVC), 180, interval=0.2, what="DNS reconciled", lab=lab)
        t_dns = time.time() - t_master
        done = wait_for(
            lambda: [e for e in audit(lab, t_master, "mx1") if e["event"] == "done"],
            30,
            interval=0.5,
            what="the done audit event",
        )
    finally:
        # the next tests need mx1, whatever happened here
        lab.ensure_running("mx1")
    wait_for(dns_restored, 120, interval=0.2, what="DNS restored after mx1 returned", lab=lab)
    print(f"master start -> DNS reconciled: {t_dns:.2f} s ({done[0]['trigger']})")


def test_mail_under_failover_is_delivered_exactly_once(cluster):
    """A sending MTA (MX lookup at ns1, round robin over the A records, retries) submits
    messages without pause while mx1 is killed and comes back: every message is accepted in
    the end, and every accepted one is in the mailbox exactly once (mx1's queue included,
    delivered after its return)."""
    lab = cluster
    tag = uuid.uuid4().hex[:8]
    maildir = maildir_of(lab, "bob@example.test")
    sender = Sender(DNS_SERVERS["ns1"], "bob@example.test", tag)
    sender.start()
    try:
        wait_for(lambda: len(sender.accepted()) >= 10, 60, interval=0.2, what="10 accepted")
        t_kill = time.time()
        lab.lab.kill("mx1")
        wait_for(lambda: dns_without(MX1_SVC), 30, interval=0.1, what="failover", lab=lab)
        time.sleep(3)
        during, t_during = len(sender.accepted()), time.time() - t_kill
        lab.lab.start("mx1")
        steady(lab)
        time.sleep(3)
    finally:
        sender.stop()
    accepted = {m.message_id: m for m in sender.accepted()}
    assert len(accepted) == len(sender.messages), "a message was never accepted"
    retried = sender.retried()
    slowest = max(m.accepted_at - m.first_try for m in accepted.values())
    # the kill really hit the flow: a message needed another address or another try, or its
    # connection waited for heartbeat to move the IP (a SYN to the dead node retransmitted
    # until mx2 answered on mx1's IP: accepted at the first try, seconds late; seen in a
    # CI-like run). Unhindered, a message is accepted in well under a second.
    assert retried or slowest > 1.0, (
        f"the kill did not meet the flow: no retry, slowest accepted after {slowest:.2f} s"
    )

    copies = delivered_copies(maildir, sender, 120)
    assert set(accepted) <= set(copies), f"never delivered: {set(accepted) - set(copies)}"
    twice = {mid: n for mid, n in copies.items() if n != 1}
    assert not twice, f"delivered more than once: {twice}"
    assert set(copies) == set(accepted), set(copies) ^ set(accepted)
    print(
        f"mail under failover: {len(accepted)} accepted ({during} by {t_during:.0f} s"
        f" after the kill), {len(copies)} delivered once, {len(retried)} retried, slowest"
        f" accepted {slowest:.2f} s after its first try"
    )


def _mx1_event(lab, since: float, event: str, timeout: float) -> dict:
    """mx1's first ``event`` audit record since ``since``."""
    found = wait_for(
        lambda: [e for e in audit(lab, since, "mx1") if e["event"] == event],
        timeout,
        interval=0.5,
        what=f"the {event} audit event",
        lab=lab,
    )
    return found[0]


def test_a_failover_changes_one_zone_whatever_the_domains(cluster):
    """With SCALE_DOMAINS more domains (pillar file scale_test.sls, the dns role applied),
    a failover and its failback each send ONE UPDATE, to the cluster zone (the runner's
    audit says which zones changed), and every domain's mail names follow on ns1 and ns2."""
    lab = cluster
    with scale_domains(lab, SCALE_DOMAINS) as domains:
        sample = [domains[0], domains[len(domains) // 2], domains[-1], "example.test"]
        t0 = time.time()
        lab.lab.kill("mx1")

        def moved():
            return all(
                a_records(ip, f"{n}.{d}") == {MX2_SVC}
                for ip in DNS_SERVERS.values()
                for d in sample
                for n in ("mail", "mx1")
            )

        wait_for(moved, 60, what="every sampled domain without mx1's IP", lab=lab)
        t_dns = time.time() - t0
        done = _mx1_event(lab, t0, "done", 30)
        assert done["dns"]["changed"] == [CLUSTER_ZONE], done["dns"]
        assert done["dns"]["propagation"]["complete"], done["dns"]
        t1 = time.time()
        lab.lab.start("mx1")
        back = _mx1_event(lab, t1, "failback", 180)
        assert back["dns"]["changed"] == [CLUSTER_ZONE], back["dns"]
        wait_for(dns_restored, 60, interval=0.2, what="DNS restored", lab=lab)
    print(f"{SCALE_DOMAINS + 2} domains: kill -> sampled names re-pointed: {t_dns:.2f} s")
