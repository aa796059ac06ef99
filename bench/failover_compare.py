#!/opt/mc-venv/bin/python
"""
Two runs of bench/failover_bench.py side by side: each figure's p50 and p95 in both, the
ratio after/before, and whether the after run stays inside the before run's spread (min-max).

    /opt/mc-venv/bin/python bench/failover_compare.py BEFORE.json AFTER.json [--out OUT.json]

Used for a change that must not move the figures (issue 10's split: before = the tree
before it, after = the tree after it, same lab, same settings).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FIGURES = (
    ("kill_to_imap_on_lost_ip", "kill -> IMAP answered on lost IP"),
    ("kill_to_dns_both", "kill -> DNS re-pointed on both servers"),
    ("runner_failover_seconds", "  of which the runner"),
    ("boot_to_dns_restored", "boot of mx1 -> DNS restored on both"),
    ("runner_failback_seconds", "  of which the runner"),
    ("healthy_to_dns_restored", "healthy -> DNS restored on both"),
)


def compare(before: dict, after: dict) -> dict:
    out = {}
    for key, _label in FIGURES:
        b, a = before[key], after[key]
        out[key] = {
            "before": b,
            "after": a,
            "ratio_p50": round(a["p50"] / b["p50"], 3) if b["p50"] else None,
            "ratio_p95": round(a["p95"] / b["p95"], 3) if b["p95"] else None,
            "after_p50_within_before_spread": b["min"] <= a["p50"] <= b["max"],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--out")
    args = parser.parse_args()
    before = json.loads(Path(args.before).read_text())
    after = json.loads(Path(args.after).read_text())
    result = compare(before, after)
    print(
        f"kills: before {before['kills']}, after {after['kills']}; heartbeat {after['heartbeat']}"
    )
    head = f"{'figure (s)':42} {'before p50/p95':>16} {'after p50/p95':>16} {'ratio p50':>10}"
    print(head + "  in spread")
    for key, label in FIGURES:
        r = result[key]
        b, a = r["before"], r["after"]
        print(
            f"{label:42} {b['p50']:>7} / {b['p95']:<6} {a['p50']:>7} / {a['p95']:<6}"
            f" {r['ratio_p50']!s:>10}  {r['after_p50_within_before_spread']}"
        )
    for name in ("mail_through_kills", "steady"):
        print(f"{name}: before {before[name]}\n{' ' * len(name)}  after  {after[name]}")
    if args.out:
        data = {
            "figures": result,
            "mail": {k: [before[k], after[k]] for k in ("mail_through_kills", "steady")},
        }
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
