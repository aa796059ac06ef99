"""
The minion watchdog in the nspawn lab (salt/selfheal/watchdog): the master's engine touches a
file on every node; a node whose minion stops getting the master's publications while the
master answers has its salt-minion restarted by a systemd timer, and the self-healing does not
take the deaf-but-alive node for dead.

Deafness is made with the lab switch: the master's packets from its publish port (4505) to mx2
are dropped, everything else passes (the request port 4506 answers). That is what Salt 3008.4
does to a minion after some master restarts (the master never learns which minion sits on a
publish connection and sends it nothing): docs/selfheal.md, "Deaf minions". The lab pillar
(pillar/topology.sls) sets deaf_after 40 s, check_interval 5 s, touch_interval 10 s.
"""

from __future__ import annotations

import time

import pytest
from _selfheal_helpers import (
    converged_selfheal_lab,
    dns_restored,
    serial,
    steady,
    wait_for,
)
from checks import assert_service, nspawn_host

pytestmark = [pytest.mark.lab]

NODES = ("salt", "mx1", "mx2", "ns1", "ns2")
HEARD = "/var/lib/mailcluster/master-heard"


@pytest.fixture(scope="module")
def cluster(lab):
    converged_selfheal_lab(lab)
    proc = lab.salt("*", "state.apply", "selfheal.watchdog", "--out=json", "--static")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    yield lab
    lab.lab.heal()
    steady(lab)


def _heard_age(lab, node: str) -> float | None:
    proc = lab.run(node, "sh", "-c", f"echo $(( $(date +%s) - $(stat -c %Y {HEARD}) ))")
    return float(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None


def _minion_start(lab, node: str) -> str:
    return lab.run(
        node, "systemctl", "show", "salt-minion", "-p", "ExecMainStartTimestampMonotonic"
    ).stdout.strip()


def test_every_node_hears_the_master_and_runs_the_timer(cluster):
    lab = cluster
    for node in NODES:
        assert_service(nspawn_host(node, lab.lab.name), "mailcluster-minion-watchdog.timer")
        # touch_interval 10 s in the lab, engine round 1 s
        wait_for(
            lambda n=node: (_heard_age(lab, n) or 999) <= 12,
            40,
            interval=1,
            what=f"a recent touch on {node}",
        )
    # a node that hears its master is left alone, and says why
    log = lab.run(
        "mx1", "journalctl", "-u", "mailcluster-minion-watchdog", "-n", "5", "--no-pager"
    ).stdout
    assert "the master was heard" in log, log


@pytest.mark.labfull
def test_a_deaf_minion_is_restarted_and_not_taken_for_dead(cluster):
    lab = cluster
    before = _minion_start(lab, "mx2")
    serials = {zone: serial("10.88.0.21", zone) for zone in ("example.test", "sales.test")}
    t0 = time.time()
    lab.lab.drop_from("salt", "mx2", 4505)
    try:
        # silence since the last touch (<= 10 s before t0) + deaf_after 40 + a 5 s check
        wait_for(
            lambda: _minion_start(lab, "mx2") != before,
            90,
            interval=1,
            what="the watchdog restarting mx2's salt-minion",
        )
        t_restart = time.time() - t0
    finally:
        lab.lab.heal()
    log = lab.run(
        "mx2", "journalctl", "-u", "mailcluster-minion-watchdog", "-n", "30", "--no-pager"
    ).stdout
    assert "while it answers: restarting salt-minion" in log, log
    wait_for(lambda: "mx2" in lab.answering(), 60, interval=1, what="mx2's minion answering")
    # the master could not reach mx2 all along, but mx1's heartbeat saw it alive: no failover
    assert dns_restored()
    assert {zone: serial("10.88.0.21", zone) for zone in serials} == serials
    wait_for(lambda: (_heard_age(lab, "mx2") or 999) <= 12, 40, interval=1, what="mx2 hears")
    print(f"publications to mx2 cut -> its minion restarted: {t_restart:.1f} s")
