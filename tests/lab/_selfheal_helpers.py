"""Helpers of the self-healing lab tests and of bench/failover_bench.py: DNS and mail probes
from the host, the runner's audit log on the master, and getting the master to run the
current reactor/runner code."""

from __future__ import annotations

import json
import socket
import time

import dns.message
import dns.query
import dns.rdatatype
import mc_wait
import pytest

MX1_SVC = "10.88.0.111"
MX2_SVC = "10.88.0.112"
DNS_SERVERS = {"ns1": "10.88.0.21", "ns2": "10.88.0.22"}
#: the zone of the mail hosts (layout cluster: dns:cluster_zone, the cluster domain)
CLUSTER_ZONE = "cluster.test"
#: names that carry mail records in the lab pillar (domains example.test, sales.test): the
#: domains' names (CNAMEs in layout cluster, answered with the target's A records) and the
#: MX hosts of the cluster zone
MAIL_NAMES = [
    "mail.example.test",
    "mx1.example.test",
    "mail.sales.test",
    f"mx1.mail.{CLUSTER_ZONE}",
]
AUDIT_LOG = "/var/cache/salt/master/mailcluster_failover/audit.jsonl"
SELFHEAL_FILES = [
    # the entry points and their building blocks (mcheal_*); a shell glob, stat'ed by sh
    "/srv/mailcluster/_runners/*.py",
    "/srv/mailcluster/reactor/master.d/selfheal.conf",
    "/srv/mailcluster/reactor/beacon_peer.sls",
    "/srv/mailcluster/reactor/presence_change.sls",
    "/srv/mailcluster/reactor/engines/mailcluster_selfheal.py",
]


def a_records(server: str, name: str, timeout: float = 0.3) -> set[str] | None:
    """A records of ``name`` at ``server`` (None when the server does not answer). A CNAME
    is followed at the same server, as a resolver does: the servers are authoritative only
    (recursion no), and the domains' mail names alias the cluster zone's hosts."""
    for _hop in range(8):
        try:
            resp = dns.query.udp(dns.message.make_query(name, "A"), server, timeout=timeout)
        except Exception:
            return None
        out, alias = set(), None
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.A:
                out |= {r.address for r in rrset}
            elif rrset.rdtype == dns.rdatatype.CNAME:
                alias = rrset[0].target.to_text()
        if out or alias is None:
            return out
        name = alias
    return set()


def serial(server: str, zone: str, timeout: float = 0.3) -> int | None:
    try:
        resp = dns.query.udp(dns.message.make_query(zone, "SOA"), server, timeout=timeout)
    except Exception:
        return None
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def dns_without(ip: str) -> bool:
    """Every DNS server answers every mail name, and none of them with ``ip``."""
    for server in DNS_SERVERS.values():
        for name in MAIL_NAMES:
            got = a_records(server, name)
            if not got or ip in got:
                return False
    return True


def dns_server_without(server: str, ip: str, names=None) -> bool:
    """``server`` answers each of ``names`` (default MAIL_NAMES), none of them with ``ip``."""
    for name in names or MAIL_NAMES:
        got = a_records(server, name)
        if not got or ip in got:
            return False
    return True


def dns_restored(server: str | None = None) -> bool:
    """Pillar's records: both service IPs on mail.<domain>, mx1's own on mx1.<domain>."""
    servers = [server] if server else list(DNS_SERVERS.values())
    for srv in servers:
        if a_records(srv, "mail.example.test") != {MX1_SVC, MX2_SVC}:
            return False
        if a_records(srv, "mail.sales.test") != {MX1_SVC, MX2_SVC}:
            return False
        if a_records(srv, "mx1.example.test") != {MX1_SVC}:
            return False
    return True


def banner(ip: str, port: int, timeout: float = 0.5, connect_timeout: float | None = None):
    """The server's greeting, or None. A short ``connect_timeout`` keeps a poller from
    sitting in one SYN sent to the dead node's MAC while the IP has already moved (the
    bench's IMAP probe: 0.3 s, with a new attempt every 20 ms)."""
    try:
        with socket.create_connection((ip, port), timeout=connect_timeout or timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(200).decode(errors="replace")
    except OSError:
        return None


def imap_answers(ip: str, connect_timeout: float | None = None) -> bool:
    text = banner(ip, 143, connect_timeout=connect_timeout)
    return bool(text and text.startswith("* OK"))


def smtp_answers(ip: str) -> bool:
    text = banner(ip, 25)
    return bool(text and text.startswith("220"))


def wait_for(predicate, timeout: float, interval: float = 0.02, what: str = "condition", lab=None):
    """mc_wait's poll loop; with ``lab``, the failure message carries the runner's last audit
    records (what it decided, and why)."""
    explain = (lambda: audit_tail(lab)) if lab else None
    return mc_wait.wait_for(predicate, timeout, interval, what=what, explain=explain)


def audit_tail(lab, count: int = 20) -> str:
    lines = []
    for rec in audit(lab)[-count:]:
        why = rec.get("reason") or ""
        lines.append(
            f"  {rec.get('time', 0):.2f} {rec.get('node')} {rec.get('event')} "
            f"trigger={rec.get('trigger')} claim={rec.get('claim')} {why[:160]}"
        )
    return "\nlast audit records on the master:\n" + "\n".join(lines)


def audit(lab, since: float = 0.0, node: str | None = None) -> list[dict]:
    """Audit records the runner wrote on the master (same content as its events)."""
    proc = lab.run("salt", "sh", "-c", f"cat {AUDIT_LOG} 2>/dev/null || true", timeout=60)
    out = []
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("time", 0) >= since and (node is None or rec.get("node") == node):
            out.append(rec)
    return out


def master_is_current(lab) -> bool:
    """The running master started after the last change of the self-healing files."""
    script = (
        'start=$(date -d "$(systemctl show -p ExecMainStartTimestamp --value salt-master)" +%s)'
        f"; newest=$(stat -c %Y {' '.join(SELFHEAL_FILES)} | sort -n | tail -1)"
        '; test "$start" -gt "$newest"'
    )
    return lab.run("salt", "sh", "-c", script, timeout=60).returncode == 0


def converged_selfheal_lab(lab) -> None:
    """Skip unless the lab is converged; then the master runs the current self-healing code."""
    proc = lab.run("ns1", "systemctl", "is-active", "named", timeout=30)
    if proc.stdout.strip() != "active":
        pytest.skip("the lab is not converged (named not active on ns1)")
    ensure_selfheal(lab)


def ensure_selfheal(lab, nodes=("mx1", "mx2")) -> None:
    """Master running the current reactor and runner; the beacon on the mail pair."""
    if not master_is_current(lab):
        lab.run("salt", "systemctl", "restart", "salt-master", timeout=120)
        # a minion the restart leaves deaf comes back through the minion watchdog (lab: 40 s)
        mc_wait.wait_for(
            lambda: set(nodes) <= lab.answering(), 180, what="minions back after a restart"
        )
    proc = lab.salt("-L", ",".join(nodes), "state.apply", "selfheal", "--out=json", "--static")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def runner_status(lab) -> dict:
    """``mailcluster_failover.status`` on the master (DNS stand-in, per-node state, settings)."""
    proc = lab.salt_run("mailcluster_failover.status", "--out=json", timeout=120)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"status printed no JSON: {proc.stdout}{proc.stderr}") from None


def holds(lab, node: str) -> set[str]:
    """The mail pair's service IPs that ``node`` holds now."""
    out = lab.run(node, "ip", "-o", "-4", "addr", "show", timeout=30).stdout
    return {ip for ip in (MX1_SVC, MX2_SVC) if f" {ip}/" in out}


def pair_settled(lab, timeout: float = 150) -> float:
    """Wait until heartbeat runs on both mail nodes, once each, and each service IP is on its
    owner only (the pair after a fault has healed: heartbeat's partition merge restarts both
    sides, and systemd starts a heartbeat that exited by itself again). Returns the seconds it
    took."""
    t0 = time.monotonic()
    owners = {"mx1": [MX1_SVC], "mx2": [MX2_SVC]}

    def settled():
        seen = {}
        for node in owners:
            active = lab.run(node, "systemctl", "is-active", "heartbeat", timeout=30).stdout
            # one master control process: a second, outside the unit, was seen after a stop
            # during heartbeat's partition merge (salt/ha/config, KillMode)
            mcp = lab.run(node, "pgrep", "-c", "-f", "heartbeat: master control", timeout=30)
            seen[node] = (active.strip(), mcp.stdout.strip(), sorted(holds(lab, node)))
        assert all(seen[n] == ("active", "1", owners[n]) for n in owners), seen
        return seen

    mc_wait.wait_for(settled, timeout, 1, what="the pair settled", ignore=(AssertionError,))
    return time.monotonic() - t0


def steady(lab, timeout: float = 180) -> None:
    """Both mail nodes up and answering, each holding its own IP, DNS as pillar says and
    served by the pillar primary (no secondary standing in)."""
    for node in ("ns1", "ns2", "mx1", "mx2"):
        lab.ensure_running(node)
    # heartbeat back on both nodes by itself (salt/ha/config's Restart=, the master's heal of
    # a partition): never started here, so that a heartbeat left down is a failure
    pair_settled(lab, timeout)
    # a returned primary serves pillar's records before the runner gives the DNS back to it
    wait_for(
        lambda: runner_status(lab).get("dns_acting") is None,
        timeout,
        interval=1,
        what="DNS given back",
        lab=lab,
    )
    wait_for(lambda: dns_restored(), timeout, interval=0.5, what="DNS restored")
    # the next fault is not refused for the hold-down of the last change (a test of its own)
    status = runner_status(lab)
    changes = [
        (v or {}).get("changed") or 0 for v in status["state"].values() if isinstance(v, dict)
    ]
    time.sleep(
        max(0.0, max(changes, default=0) + float(status["settings"]["hold_down"]) - time.time())
    )

    def home():
        out = lab.run("mx1", "ip", "-o", "addr", "show", timeout=30).stdout
        return MX1_SVC in out

    wait_for(home, timeout, interval=0.5, what="mx1's service IP back on mx1")
