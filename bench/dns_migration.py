#!/opt/mc-venv/bin/python
"""Issue 14: a converged lab moved to the DNS layout of the tree by one highstate, with mail
flowing (an MTA-like sender: MX lookups at ns1 and at ns2, round robin, retries), and what a
resolver that holds records of the old layout sees afterwards.

Run as root on the host, with the lab converged on the other layout (for instance pillar
``dns:layout: per_domain`` applied, then removed):
    /opt/mc-venv/bin/python bench/dns_migration.py
Prints the figures and writes bench/results/dns-migration.json.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.append(str(REPO / "tests"))  # mc_wait, which tests/lab/conftest.py imports
sys.path.insert(0, str(REPO / "bench"))

from _mail_flow import Sender, resolve  # noqa: E402
from _selfheal_helpers import DNS_SERVERS  # noqa: E402
from conftest import LabHandle  # noqa: E402
from failover_bench import mail_flow_report  # noqa: E402
from mclab.lab import Lab  # noqa: E402

NAMES = [("example.test", "MX"), ("mail.example.test", "A"), ("mx1.example.test", "A")]


def answers() -> dict:
    out = {}
    for server, ip in DNS_SERVERS.items():
        for name, rtype in NAMES:
            out[f"{server} {name} {rtype}"] = sorted(resolve(ip, name, rtype))
    return out


def main() -> int:
    lab = LabHandle(Lab())
    before = answers()
    old_hosts = {h: resolve(DNS_SERVERS["ns1"], h, "A") for h in before["ns1 example.test MX"]}
    flows = [
        Sender(ip, "bob@example.test", f"migr-{name}-{uuid.uuid4().hex[:6]}")
        for name, ip in DNS_SERVERS.items()
    ]
    for flow in flows:
        flow.start()
    time.sleep(3)
    t0 = time.monotonic()
    proc = lab.salt("*", "state.apply", "--out=json", "--static", "--timeout=1200", timeout=1800)
    seconds = time.monotonic() - t0
    time.sleep(5)
    for flow in flows:
        flow.stop()
    states = json.loads(proc.stdout or "{}")
    failed = {
        node: [k for k, v in ret.items() if not v.get("result")]
        for node, ret in states.items()
        if isinstance(ret, dict)
    }
    after = answers()
    # a resolver holding an MX record of before (TTL 300 s) looks its host up now
    stale = {h: resolve(DNS_SERVERS["ns1"], h, "A") for h in old_hosts}
    report = {
        "apply_seconds": round(seconds, 1),
        "apply_failed_states": {n: f for n, f in failed.items() if f},
        "before": before,
        "after": after,
        "old_mx_hosts_now": stale,
        "mail": {f.dns_server: mail_flow_report(lab, f) for f in flows},
    }
    out = REPO / "bench" / "results" / "dns-migration.json"
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    lost = sum(m["lost"] for m in report["mail"].values())
    never = sum(m["messages"] - m["accepted"] for m in report["mail"].values())
    print(f"highstate {seconds:.1f} s; lost {lost}, never accepted {never}; written {out}")
    return 0 if not lost and not never and not report["apply_failed_states"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
