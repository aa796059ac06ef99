"""
The picture of the cluster (`lab/lab diagram`, docs/diagram.md) drawn from the live lab:
healthy, then with mx1 killed and failed over, then healthy again. The SVG is parsed and
checked against what the lab really does (addresses on the nodes, DNS answers from the host),
not against the runner's own model.

Leaves the lab as it found it: mx1 running, its IP home, DNS as pillar says.
"""

from __future__ import annotations

import time

import pytest
from _selfheal_helpers import (
    DNS_SERVERS,
    MX1_SVC,
    MX2_SVC,
    a_records,
    converged_selfheal_lab,
    dns_without,
    steady,
    wait_for,
)
from mc_diagram import PNG_MAGIC, Drawing

pytestmark = [pytest.mark.lab]

NODES = ("salt", "mx1", "mx2", "ns1", "ns2")
HOME = {MX1_SVC: "mx1", MX2_SVC: "mx2"}


def draw(lab, out) -> tuple[Drawing, float]:
    t0 = time.monotonic()
    proc = lab.cli("diagram", "--out", str(out), "--source", timeout=120)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    png = (out / "cluster.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000, len(png)
    return Drawing(out / "cluster.svg"), seconds


def holders(lab, ip, nodes=("mx1", "mx2")):
    """The nodes (of ``nodes``, running ones) whose kernel has ``ip`` now."""
    return {n for n in nodes if ip in lab.run(n, "ip", "-o", "addr", "show").stdout}


def dns_drawn_as_served(drawing, name):
    """The answers drawn for ``name`` are what ns1 and ns2 answer the host now."""
    served = set()
    for server in DNS_SERVERS.values():
        served |= a_records(server, name, timeout=1.0) or set()
    assert served, f"no DNS server answers {name}"
    assert drawing.answers(name) == served, (name, drawing.answers(name), served)
    return served


@pytest.fixture(scope="module")
def cluster(lab):
    converged_selfheal_lab(lab)
    steady(lab)
    yield lab
    steady(lab)


@pytest.mark.labfull
def test_healthy_then_failed_over_cluster_drawn_as_it_is(cluster, tmp_path):
    lab = cluster
    healthy, seconds_healthy = draw(lab, tmp_path / "healthy")
    assert "healthy" in healthy.classes("graph0")
    for node in NODES:
        assert "down" not in healthy.classes(f"node-{node}"), node
        assert lab.ip(node) in healthy.text(f"node-{node}")
    for ip, home in HOME.items():
        assert holders(lab, ip) == {home}
        assert healthy.holders(ip) == {home}
        assert "takeover" not in healthy.classes(f"hold-{ip}-{home}")
    assert dns_drawn_as_served(healthy, "mail.example.test") == {MX1_SVC, MX2_SVC}
    dns_drawn_as_served(healthy, "mail.sales.test")
    db = healthy.text("repl-db-ns2")
    assert "IO Yes, SQL Yes" in db and "broken" not in healthy.classes("repl-db-ns2")
    bind = healthy.text("repl-dns-ns2")
    assert "broken" not in healthy.classes("repl-dns-ns2")
    assert "example.test" in bind and "!=" not in bind, bind
    assert "shared_path" in healthy.text("store")

    lab.lab.kill("mx1")
    try:
        wait_for(lambda: dns_without(MX1_SVC), 60, interval=0.5, what="DNS without .111", lab=lab)
        # heartbeat's takeover may land just after the runner's DNS change (and vice versa)
        wait_for(lambda: holders(lab, MX1_SVC, ("mx2",)) == {"mx2"}, 30, interval=0.3, what="IP")
        failed, seconds_failed = draw(lab, tmp_path / "failed")
        assert "degraded" in failed.classes("graph0")
        assert "down" in failed.classes("node-mx1")
        assert "DOWN" in failed.text("node-mx1")
        assert "takeover" in failed.classes(f"hold-{MX1_SVC}-mx2")
        assert "takeover" in failed.classes(f"ip-{MX1_SVC}")
        assert failed.holders(MX1_SVC) == {"mx2"}
        assert "takeover" not in failed.classes(f"hold-{MX2_SVC}-mx2")
        assert dns_drawn_as_served(failed, "mail.example.test") == {MX2_SVC}
        assert dns_drawn_as_served(failed, "mail.sales.test") == {MX2_SVC}
        assert "broken" in failed.classes("store")
        print(f"diagram drawn in {seconds_healthy:.1f} s healthy, {seconds_failed:.1f} s failed")
    finally:
        lab.lab.start("mx1")
        steady(lab)
