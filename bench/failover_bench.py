#!/opt/mc-venv/bin/python
"""
Self-healing figures in the lab (issue 6), side by side with ../shared/notes/anchors.md.

Per kill (>= 10): hard-kill mx1 (cgroup.kill), then measure from the kill
  - IMAP answered on mx1's service IP (heartbeat moved it to mx2),
  - DNS re-pointed on ns1 and on ns2 (no mail name returns mx1's IP; verification included),
then boot mx1 again and measure
  - boot -> DNS restored on both servers, and the runner's own failback time (healthy -> DNS).
Then a steady period under mail load with no fault: spurious takeovers (audit events
started/done/failback) must be 0.

Run as root on the host with a converged default lab:
    /opt/mc-venv/bin/python bench/failover_bench.py --kills 10 --steady-minutes 10
Optional `--heartbeat keepalive=100ms,warntime=300ms,deadtime=500ms,initdead=6` applies those
timings to the pair through pillar/local.sls (only if that file does not exist) for the run
and restores the lab's own afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(REPO / "tests" / "lab"))

from _mail_flow import Sender, delivered_copies, maildir_of  # noqa: E402
from _selfheal_helpers import (  # noqa: E402
    DNS_SERVERS,
    MX1_SVC,
    audit,
    dns_restored,
    dns_server_without,
    ensure_selfheal,
    imap_answers,
    steady,
)
from conftest import LabHandle  # noqa: E402
from mclab.lab import Lab  # noqa: E402

ANCHORS = {
    "IP takeover, heartbeat keepalive 200ms deadtime 2": 2.51,
    "IP takeover, heartbeat keepalive 100ms deadtime 1": 1.55,
    "IP takeover, heartbeat keepalive 50ms deadtime 500ms": 0.98,
    "IP takeover, keepalived VRRPv3 advert_int 0.1": 0.32,
    "DNS: nsupdate start -> secondary serves it (TSIG, NOTIFY)": 0.11,
}


def pct(values, p):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = (len(vals) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(vals) - 1)
    return round(vals[lo] + (vals[hi] - vals[lo]) * (k - lo), 3)


def spread(runs: list[dict], key: str) -> dict:
    """p50, p95, min, max of ``key`` over the runs, and how many runs missed it (None)."""
    vals = [r[key] for r in runs]
    return {
        "p50": pct(vals, 50),
        "p95": pct(vals, 95),
        "min": pct(vals, 0),
        "max": pct(vals, 100),
        "missed": sum(v is None for v in vals),
    }


def first_true(predicate, t0, timeout, interval=0.02):
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if predicate():
            return round(time.monotonic() - t0, 3)
        time.sleep(interval)
    return None


def first_true_overlapping(predicate, t0, timeout, interval=0.02):
    """Like first_true, but a new attempt starts every ``interval`` without waiting for the
    previous one: an attempt stuck in a SYN to the dead node's MAC does not hide the moment
    the IP answers from its new holder. Returns when the first attempt succeeds."""
    done = threading.Event()
    found = []

    def attempt():
        if predicate() and not done.is_set():
            found.append(round(time.monotonic() - t0, 3))
            done.set()

    deadline = t0 + timeout
    while not done.is_set() and time.monotonic() < deadline:
        threading.Thread(target=attempt, daemon=True).start()
        done.wait(interval)
    return min(found) if found else None


def probe_all(probes: dict, t0: float, timeout: float, overlapping=()) -> dict:
    """Each probe polled in its own thread; the names in ``overlapping`` with overlapping
    attempts (connection probes), the others one attempt after the other."""
    out = {}

    def run(name, pred):
        poll = first_true_overlapping if name in overlapping else first_true
        out[name] = poll(pred, t0, timeout)

    threads = [threading.Thread(target=run, args=kv) for kv in probes.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return out


def hb_settings(lab: LabHandle) -> dict:
    text = lab.run("mx1", "cat", "/etc/ha.d/ha.cf").stdout
    keys = ("keepalive", "warntime", "deadtime", "initdead", "auto_failback")
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in keys:
            out[parts[0]] = parts[1]
    return out


def audit_events(lab: LabHandle, since: float, event: str, timeout: float) -> list[dict]:
    """mx1's ``event`` audit records since ``since``, waiting up to ``timeout`` for the first
    (the runner writes them after both DNS servers serve the change); [] if none came."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in audit(lab, since, "mx1") if e["event"] == event]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def one_kill(lab: LabHandle, timeout: float, names=None) -> dict:
    """One kill of mx1 and its return, timed; ``names``: the mail names DNS must re-point
    (default the lab's, _selfheal_helpers.MAIL_NAMES)."""
    steady(lab)
    # let the hold-down of the last failback pass (hold_down: 10 s by default)
    last = [e["time"] for e in audit(lab, time.time() - 60, "mx1")]
    if last:
        time.sleep(max(0.0, 11 - (time.time() - max(last))))
    wall0 = time.time()
    t0 = time.monotonic()
    lab.lab.kill("mx1")
    # IMAP greeting on mx1's IP; a short connect timeout per attempt, attempts overlapping
    probes = {"imap": lambda: imap_answers(MX1_SVC, connect_timeout=0.3)}
    for name, ip in DNS_SERVERS.items():
        probes[f"dns_{name}"] = lambda ip=ip: dns_server_without(ip, MX1_SVC, names)
    res = probe_all(probes, t0, timeout, overlapping=("imap",))
    vals = [res[f"dns_{n}"] for n in DNS_SERVERS]
    res["dns_both"] = None if None in vals else max(vals)
    done = audit_events(lab, wall0, "done", 20)
    res["trigger"] = done[0]["trigger"] if done else None
    res["runner_s"] = done[0].get("seconds") if done else None
    # return, once the hold-down (10 s) of the failover has passed: a failback inside it is
    # refused on purpose (flapping) and made by the next reconcile, which is not what we time
    if done:
        time.sleep(max(0.0, 11 - (time.time() - done[0]["time"])))
    t1 = time.monotonic()
    wall1 = time.time()
    lab.lab.start("mx1")
    res["boot_s"] = round(time.monotonic() - t1, 3)
    back = probe_all({"restored": dns_restored}, t1, timeout * 6)
    res["return_dns"] = back["restored"]
    # the runner writes the event after both servers serve the new serial: poll for it
    fb = audit_events(lab, wall1, "failback", 10)
    res["failback_runner_s"] = fb[0].get("seconds") if fb else None
    res["failback_trigger"] = fb[0].get("trigger") if fb else None
    # the runner's "healthy" moment (minion answers, services active, the peer's heartbeat
    # sees mx1 active) -> both DNS servers serve pillar's records again, seen from the host
    healthy_at = ((fb[0].get("witnesses") or {}).get("healthy_at")) if fb else None
    if healthy_at and back["restored"] is not None:
        res["healthy_to_dns"] = round(wall1 + back["restored"] - healthy_at, 3)
    else:
        res["healthy_to_dns"] = None
    return res


def steady_load(lab: LabHandle, minutes: float) -> dict:
    """Two MTA-like senders for ``minutes`` with no fault: the runner must not act."""
    wall0 = time.time()
    senders = [Sender(DNS_SERVERS[ns], "alice@example.test", f"steady-{ns}-{int(wall0)}",
                      interval=0.2) for ns in ("ns1", "ns2")]  # fmt: skip
    for snd in senders:
        snd.start()
    time.sleep(minutes * 60)
    for snd in senders:
        snd.stop()
    events = audit(lab, wall0)
    return {
        "minutes": minutes,
        "messages_accepted": sum(len(s.accepted()) for s in senders),
        "messages_retried": sum(len(s.retried()) for s in senders),
        "spurious_takeovers": len(
            [e for e in events if e["event"] in ("started", "done", "failback")]
        ),
        "refused": len([e for e in events if e["event"] == "refused"]),
    }


def mail_flow_report(lab: LabHandle, sender: Sender, timeout: float = 180) -> dict:
    """Accepted vs delivered (exactly once) for a flow that ran through every kill."""
    accepted = {m.message_id for m in sender.accepted()}
    copies = delivered_copies(maildir_of(lab, sender.rcpt), sender, timeout)
    return {
        "messages": len(sender.messages),
        "accepted": len(accepted),
        "delivered_once": sum(1 for m in accepted if copies.get(m) == 1),
        "delivered_twice_or_more": sum(1 for n in copies.values() if n > 1),
        "lost": len(accepted - set(copies)),
        "retried": len(sender.retried()),
        "slowest_accept_s": round(
            max((m.accepted_at - m.first_try for m in sender.accepted()), default=0), 3
        ),
    }


def runs_under_mail(lab: LabHandle, resolver: str, label: str, count: int, one, *args):
    """``one(lab, *args)`` ``count`` times while an MTA-like sender (MX lookups at
    ``resolver``) runs through all of them: ``(results, accepted vs delivered exactly once)``."""
    runs = []
    flow = Sender(DNS_SERVERS[resolver], "bob@example.test", f"{label}-{int(time.time())}")
    flow.start()
    try:
        for i in range(count):
            runs.append(one(lab, *args))
            print(f"{label} {i + 1}/{count}: {json.dumps(runs[-1])}", flush=True)
        steady(lab)
    finally:
        flow.stop()
    return runs, mail_flow_report(lab, flow)


def mail_line(mail: dict, through: str) -> str:
    return (
        f"mail through the {through}: {mail['accepted']} accepted of {mail['messages']}, "
        f"{mail['delivered_once']} delivered once, {mail['delivered_twice_or_more']} twice or"
        f" more, {mail['lost']} lost, {mail['retried']} needed a retry"
    )


def tune_heartbeat(lab: LabHandle, spec: str | None) -> Path | None:
    if not spec:
        return None
    local = REPO / "pillar" / "local.sls"
    if local.exists():
        raise SystemExit("pillar/local.sls exists (someone else's override): not touching it")
    values = dict(kv.split("=", 1) for kv in spec.split(","))
    local.write_text("ha:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()))
    proc = lab.salt("-L", "mx1,mx2", "state.apply", "ha", "--out=json", "--static")
    assert proc.returncode == 0, proc.stdout[-2000:]
    return local


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--steady-minutes", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--heartbeat", help="e.g. keepalive=100ms,warntime=300ms,deadtime=500ms")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "failover.json"))
    args = parser.parse_args()

    lab = LabHandle(Lab())
    ensure_selfheal(lab)
    local = tune_heartbeat(lab, args.heartbeat)
    try:
        hb = hb_settings(lab)
        runs, mail = runs_under_mail(lab, "ns1", "kill", args.kills, one_kill, args.timeout)
        print(f"mail through the kills: {json.dumps(mail)}", flush=True)
        load = steady_load(lab, args.steady_minutes) if args.steady_minutes > 0 else None
    finally:
        if local is not None:
            local.unlink()
            lab.salt("-L", "mx1,mx2", "state.apply", "ha", "--out=json", "--static")

    summary = {
        "heartbeat": hb,
        "kills": len(runs),
        "kill_to_imap_on_lost_ip": spread(runs, "imap"),
        "kill_to_dns_ns1": spread(runs, "dns_ns1"),
        "kill_to_dns_ns2": spread(runs, "dns_ns2"),
        "kill_to_dns_both": spread(runs, "dns_both"),
        "runner_failover_seconds": spread(runs, "runner_s"),
        "boot_to_dns_restored": spread(runs, "return_dns"),
        "runner_failback_seconds": spread(runs, "failback_runner_s"),
        "healthy_to_dns_restored": spread(runs, "healthy_to_dns"),
        "mail_through_kills": mail,
        "triggers": sorted({str(r["trigger"]) for r in runs}),
        "steady": load,
        "anchors": ANCHORS,
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print()
    print(f"heartbeat: {hb}")
    print(f"{'figure (s)':48} {'p50':>7} {'p95':>7}   anchor")
    rows = [
        ("kill -> IMAP answered on lost IP", "kill_to_imap_on_lost_ip",
         f"heartbeat deadtime 2: {ANCHORS['IP takeover, heartbeat keepalive 200ms deadtime 2']}"
         f" / 500ms: {ANCHORS['IP takeover, heartbeat keepalive 50ms deadtime 500ms']}"),
        ("kill -> DNS re-pointed on both servers", "kill_to_dns_both",
         f"TSIG update -> secondary {ANCHORS[list(ANCHORS)[-1]]} (no verification)"),
        ("  of which the runner (trigger -> DNS on both)", "runner_failover_seconds", ""),
        ("boot of mx1 -> DNS restored on both", "boot_to_dns_restored", ""),
        ("  of which the runner (node back -> healthy -> DNS)", "runner_failback_seconds", ""),
        ("healthy (runner's check) -> DNS restored on both", "healthy_to_dns_restored",
         "target 2 s"),
    ]  # fmt: skip
    for label, key, anchor in rows:
        s = summary[key]
        print(f"{label:48} {s['p50']!s:>7} {s['p95']!s:>7}   {anchor}")
    print(mail_line(mail, "kills"))
    if load:
        print(
            f"steady load {load['minutes']} min: {load['messages_accepted']} messages, "
            f"spurious takeovers {load['spurious_takeovers']}, refused {load['refused']}"
        )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
