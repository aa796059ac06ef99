#!/opt/mc-venv/bin/python
"""
The pair's two movers side by side in one run (issue 14, item 5): heartbeat (the lab's
settings) and keepalived (VRRPv3, pillar ha:mover: keepalived, docs/keepalived.md).

Per mover: switch the pair to it (tests/lab/_mover.py: pillar override + state.apply ha),
then N times: hard-kill mx1 (cgroup.kill) and measure kill -> mx1's service IP answers IMAP
(on mx2), kill -> DNS re-pointed on both servers (the same beacon/reactor/runner path), then
boot mx1 and wait until its IP is home and DNS restored. p50/p95 per figure. Last, once, with
keepalived: a steady period under mail load (two MTA-like senders) counting spurious
takeovers (the runner's audit records and keepalived's MASTER transitions). The lab is left
on heartbeat.

    /opt/mc-venv/bin/python bench/mover_bench.py [--kills 5] [--steady-minutes 10]
Writes bench/results/mover.json. Holds the lab lock per mover (keepalived's: its kills, the
steady period and the switch back).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

from _mover import own_ips_home, switch  # noqa: E402
from _selfheal_helpers import (  # noqa: E402
    DNS_SERVERS,
    MX1_SVC,
    dns_restored,
    dns_server_without,
    ensure_selfheal,
    imap_answers,
)
from conftest import LabHandle  # noqa: E402
from failover_bench import ANCHORS, probe_all, spread, steady_load  # noqa: E402
from mclab.lab import Lab  # noqa: E402

HOLD_DOWN = 11  # the runner refuses a change within 10 s of the last one (flapping)


@contextmanager
def lab_lock():
    with open("/tmp/mc-lab.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def one_kill(lab: LabHandle, timeout: float) -> dict:
    own_ips_home(lab, timeout=120)
    t0 = time.monotonic()
    lab.lab.kill("mx1")
    probes = {"imap": lambda: imap_answers(MX1_SVC, connect_timeout=0.3)}
    for name, ip in DNS_SERVERS.items():
        probes[f"dns_{name}"] = lambda ip=ip: dns_server_without(ip, MX1_SVC)
    res = probe_all(probes, t0, timeout, overlapping=("imap",))
    vals = [res[f"dns_{n}"] for n in DNS_SERVERS]
    res["dns_both"] = None if None in vals else max(vals)
    time.sleep(HOLD_DOWN)
    t1 = time.monotonic()
    lab.lab.start("mx1")
    lab.ensure_running("mx1")
    own_ips_home(lab, timeout=120)
    back = probe_all({"restored": dns_restored}, t1, timeout * 6)
    res["boot_to_dns_restored"] = back["restored"]
    time.sleep(HOLD_DOWN)
    return res


def vrrp_transitions(lab: LabHandle, since: float) -> int:
    count = 0
    for node in ("mx1", "mx2"):
        proc = lab.run(node, "sh", "-c", f"journalctl -u keepalived --since @{int(since)} "
                       "| grep -c 'Entering MASTER STATE' || true")  # fmt: skip
        count += int(proc.stdout.strip() or 0)
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--steady-minutes", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "mover.json"))
    args = parser.parse_args()
    lab = LabHandle(Lab())
    out: dict = {"kills": args.kills, "anchors": ANCHORS, "movers": {}}
    for mover in ("heartbeat", "keepalived"):
        # one hold per mover: the lab is never on keepalived without this bench holding the
        # lock (other runs expect heartbeat); keepalived's hold ends with the switch back
        with lab_lock():
            try:
                ensure_selfheal(lab)
                switch(lab, mover)
                time.sleep(31)  # the runner's pillar cache (pillar_cache: 30 s) sees the mover
                runs = []
                for i in range(args.kills):
                    runs.append(one_kill(lab, args.timeout))
                    print(f"{mover} {i + 1}/{args.kills}: {json.dumps(runs[-1])}", flush=True)
                out["movers"][mover] = {
                    "kill_to_imap_on_lost_ip": spread(runs, "imap"),
                    "kill_to_dns_both": spread(runs, "dns_both"),
                    "boot_to_dns_restored": spread(runs, "boot_to_dns_restored"),
                    "runs": runs,
                }
                if mover == "keepalived" and args.steady_minutes > 0:
                    since = time.time()
                    load = steady_load(lab, args.steady_minutes)
                    load["vrrp_master_transitions"] = vrrp_transitions(lab, since)
                    out["steady_keepalived"] = load
            finally:
                if mover == "keepalived":
                    lab.ensure_running("mx1")
                    switch(lab, "heartbeat")
                    own_ips_home(lab, timeout=120)
    hb, ka = (out["movers"][m]["kill_to_imap_on_lost_ip"] for m in ("heartbeat", "keepalived"))
    out["ratio_keepalived_to_heartbeat_p50"] = round(ka["p50"] / hb["p50"], 3)
    out["goal"] = "keepalived kill -> IP answered <= 0.35 s p50; 0 spurious takeovers in 10 min"
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'figure (s)':40} {'heartbeat p50/p95':>20} {'keepalived p50/p95':>20}")
    for key in ("kill_to_imap_on_lost_ip", "kill_to_dns_both", "boot_to_dns_restored"):
        h, k = (out["movers"][m][key] for m in ("heartbeat", "keepalived"))
        print(f"{key:40} {h['p50']!s:>9} / {h['p95']!s:<8} {k['p50']!s:>9} / {k['p95']!s:<8}")
    print(f"keepalived / heartbeat (IP answered, p50): {out['ratio_keepalived_to_heartbeat_p50']}")
    if "steady_keepalived" in out:
        print(f"steady load, keepalived: {json.dumps(out['steady_keepalived'])}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
