#!/opt/mc-venv/bin/python
"""
A whole data centre lost with the DNS primary (issue 6), in the lab: dc1 = mx1 + ns1.

Per run (default 5): wait out the hold-down, hard-kill mx1 and ns1 together, then measure
from the kill
  - IMAP answered on mx1's service IP (heartbeat on mx2),
  - ns2 without mx1's IP in any mail name (ns2 promoted to acting primary, then the failover),
and, from the runner's audit, the promotion's own time. Then boot ns1 and mx1 and measure
  - boot -> the DNS back on ns1 (audit dns_restored) and pillar's records on both servers.
A sender (MX lookups at ns2, the surviving server) runs through every run: messages accepted
vs delivered exactly once, as in bench/failover_bench.py, whose helpers this reuses.

Run as root on the host with a converged default lab:
    /opt/mc-venv/bin/python bench/dc_loss_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# the lab tool and the lab tests' helpers, through failover_bench (which puts them on sys.path)
from failover_bench import (
    DNS_SERVERS,
    MX1_SVC,
    REPO,
    Lab,
    LabHandle,
    audit,
    dns_restored,
    dns_server_without,
    ensure_selfheal,
    hb_settings,
    imap_answers,
    mail_line,
    probe_all,
    runs_under_mail,
    spread,
    steady,
)

HOLD_DOWN = 11.0  # the runner's hold_down (10 s) and a margin


def wait_hold_down(lab: LabHandle) -> None:
    last = [e["time"] for e in audit(lab, time.time() - 60)]
    if last:
        time.sleep(max(0.0, HOLD_DOWN - (time.time() - max(last))))


def first_event(lab: LabHandle, since: float, node: str, event: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in audit(lab, since, node) if e["event"] == event]
        if found:
            return found[0]
        time.sleep(0.2)
    return None


def one_run(lab: LabHandle, timeout: float) -> dict:
    steady(lab)
    wait_hold_down(lab)
    wall0, t0 = time.time(), time.monotonic()
    lab.lab.kill("mx1")
    lab.lab.kill("ns1")
    probes = {
        "imap": lambda: imap_answers(MX1_SVC, connect_timeout=0.3),
        "dns_ns2": lambda: dns_server_without(DNS_SERVERS["ns2"], MX1_SVC),
    }
    res = probe_all(probes, t0, timeout, overlapping=("imap",))
    promoted = first_event(lab, wall0, "ns1", "dns_promoted", 20)
    done = first_event(lab, wall0, "mx1", "done", 20)
    res["promotion_s"] = promoted.get("seconds") if promoted else None
    res["trigger"] = done.get("trigger") if done else None
    res["runner_failover_s"] = done.get("seconds") if done else None
    wait_hold_down(lab)
    wall1, t1 = time.time(), time.monotonic()
    lab.lab.start("ns1")
    lab.lab.start("mx1")
    res["boot_s"] = round(time.monotonic() - t1, 3)
    restored = first_event(lab, wall1, "ns1", "dns_restored", timeout * 4)
    res["boot_to_dns_primary_back"] = round(restored["time"] - wall1, 3) if restored else None
    res["restore_s"] = restored.get("seconds") if restored else None
    back = probe_all({"restored": dns_restored}, t1, timeout * 6)
    res["boot_to_records_restored"] = back["restored"]
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "dc-loss.json"))
    args = parser.parse_args()

    lab = LabHandle(Lab())
    ensure_selfheal(lab)
    # the sender looks up MX at ns2: ns1 is part of what dies
    runs, mail = runs_under_mail(lab, "ns2", "run", args.runs, one_run, args.timeout)

    keys = [
        ("kill -> IMAP answered on mx1's IP", "imap"),
        ("kill -> ns2 without mx1's IP (promotion included)", "dns_ns2"),
        ("  of which the promotion of ns2", "promotion_s"),
        ("  the runner's failover (trigger -> DNS)", "runner_failover_s"),
        ("boot of dc1 -> DNS back on ns1", "boot_to_dns_primary_back"),
        ("  of which the restore", "restore_s"),
        ("boot of dc1 -> pillar's records on both", "boot_to_records_restored"),
    ]
    summary = {
        "heartbeat": hb_settings(lab),
        "runs": len(runs),
        **{key: spread(runs, key) for _, key in keys},
        "triggers": sorted({str(r["trigger"]) for r in runs}),
        "mail_through_runs": mail,
        "results": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nheartbeat: {summary['heartbeat']}")
    print(f"{'figure (s)':52} {'p50':>7} {'p95':>7} {'max':>7}")
    for label, key in keys:
        s = summary[key]
        print(f"{label:52} {s['p50']!s:>7} {s['p95']!s:>7} {s['max']!s:>7}")
    print(mail_line(mail, "runs"))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
