#!/opt/mc-venv/bin/python
"""Issue 14: failover cost against the number of mail domains, side by side in one run.

The lab's 2 domains, then --domains in all (a pillar file the run adds and removes,
tests/lab/_scale_pillar.py; the dns role applied on ns1 and ns2): per kill of mx1, kill ->
the sampled domains' mail names (mail.<d>, mx1.<d>, the MX host) without mx1's service IP on
ns1 and on ns2, and mx1's return -> restored, with an MTA-like sender running throughout
(accepted vs delivered once). At the large count also: the master's pillar render time,
the dns apply, a full check of every domain on both servers at rest and during one failover,
and the runner's audit (zones changed, UPDATE seconds).

Run as root on the host with a converged default lab (layout cluster):
    /opt/mc-venv/bin/python bench/scale_bench.py --domains 10000 --kills 3
Writes bench/results/scale-<N>.json and bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.append(str(REPO / "tests"))  # mc_wait, which tests/lab/conftest.py imports
sys.path.insert(0, str(REPO / "bench"))

import _scale_pillar  # noqa: E402
from _mail_flow import resolve  # noqa: E402
from _selfheal_helpers import (  # noqa: E402
    DNS_SERVERS,
    MX1_SVC,
    MX2_SVC,
    a_records,
    audit,
    dns_restored,
    ensure_selfheal,
    steady,
)
from conftest import LabHandle  # noqa: E402
from failover_bench import one_kill, runs_under_mail, spread  # noqa: E402
from mclab.lab import Lab  # noqa: E402

LAB_DOMAINS = ["example.test", "sales.test"]


def sample_names(domains: list[str], count: int = 20) -> list[str]:
    step = max(1, len(domains) // count)
    picked = sorted(set(domains[::step][:count]) | {domains[-1], *LAB_DOMAINS})
    return [f"{label}.{d}" for d in picked for label in ("mail", "mx1")]


def pillar_seconds(lab: LabHandle) -> float:
    """``salt-run pillar.show_pillar ns1`` on the master: one render of a node's pillar
    (salt-run's own start-up included: the same in both runs)."""
    t0 = time.monotonic()
    proc = lab.salt_run("pillar.show_pillar", "ns1", "--out=quiet", timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return round(time.monotonic() - t0, 2)


def full_check(domains: list[str], want: dict[str, set[str]]) -> dict:
    """Every domain's mail names on both servers against ``want`` (per label: mail, mx1):
    ``{"checked", "wrong", "seconds"}``."""
    t0 = time.monotonic()
    jobs = [(ip, f"{label}.{d}") for ip in DNS_SERVERS.values() for d in domains
            for label in ("mail", "mx1")]  # fmt: skip

    def one(job):
        got = a_records(job[0], job[1], timeout=2.0)
        return None if got == want[job[1].split(".", 1)[0]] else f"{job} {sorted(got or [])}"

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        wrong = [w for w in pool.map(one, jobs) if w]
    mx_wrong = [d for d in domains[:: max(1, len(domains) // 200)]
                if not all(h.endswith(".mail.cluster.test")
                           for h in resolve(DNS_SERVERS["ns2"], d, "MX"))]  # fmt: skip
    return {"checked": len(jobs), "wrong": wrong[:20], "wrong_count": len(wrong),
            "mx_not_in_cluster_zone": mx_wrong[:20],
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip


def failover_full_check(lab: LabHandle, domains: list[str], timeout: float) -> dict:
    """One more kill: once the sampled names moved, every domain checked on both servers."""
    steady(lab)
    time.sleep(11)  # hold-down of the last change
    wall0, t0 = time.time(), time.monotonic()
    lab.lab.kill("mx1")
    names = sample_names(domains)
    while time.monotonic() - t0 < timeout:
        if all(a_records(ip, n) == {MX2_SVC} for ip in DNS_SERVERS.values() for n in names):
            break
        time.sleep(0.05)
    moved = round(time.monotonic() - t0, 3)
    check = full_check(domains, {"mail": {MX2_SVC}, "mx1": {MX2_SVC}})
    done = [e for e in audit(lab, wall0, "mx1") if e["event"] == "done"]
    time.sleep(11)
    lab.lab.start("mx1")
    steady(lab)
    dns = done[0]["dns"] if done else {}
    return {"kill_to_sample_moved_s": moved, "full_check": check,
            "audit_changed_zones": dns.get("changed"),
            "audit_update_seconds": dns.get("update_seconds"),
            "audit_propagation": dns.get("propagation")}  # fmt: skip


def measure(lab: LabHandle, label: str, domains: list[str], kills: int, timeout: float) -> dict:
    names = sample_names(domains)
    runs, mail = runs_under_mail(lab, "ns1", label, kills, one_kill, timeout, names)
    return {
        "domains": len(domains),
        "sampled_names": len(names),
        "kill_to_dns_ns1": spread(runs, "dns_ns1"),
        "kill_to_dns_ns2": spread(runs, "dns_ns2"),
        "kill_to_dns_both": spread(runs, "dns_both"),
        "boot_to_dns_restored": spread(runs, "return_dns"),
        "healthy_to_dns_restored": spread(runs, "healthy_to_dns"),
        "runs": runs,
        "mail": mail,
    }


def table(result: dict) -> str:
    small, big = result["small"], result["large"]
    rows = [
        ("kill -> names re-pointed on ns1 and ns2, p50 (s)", "kill_to_dns_both"),
        ("kill -> re-pointed on ns2, p50 (s)", "kill_to_dns_ns2"),
        ("healthy -> restored on both, p50 (s)", "healthy_to_dns_restored"),
    ]
    lines = [f"| | {small['domains']} domains | {big['domains']} domains | ratio |",
             "|---|---|---|---|"]  # fmt: skip
    for text, key in rows:
        a, b = small[key]["p50"], big[key]["p50"]
        ratio = f"{b / a:.2f}" if a and b else "-"
        lines.append(f"| {text} | {a} | {b} | {ratio} |")
    for key in ("lost", "accepted"):
        lines.append(f"| mail {key} | {small['mail'][key]} | {big['mail'][key]} | |")
    lines.append(f"| master: pillar.show_pillar ns1 (s) | {result['pillar_s_small']} | "
                 f"{result['pillar_s_large']} | |")  # fmt: skip
    lines.append(f"| state.apply dns on ns1+ns2 (s) | | {result['apply_dns_s']} | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    lab = LabHandle(Lab())
    ensure_selfheal(lab)
    steady(lab)
    result = {"domains": args.domains, "kills": args.kills, "started": time.time()}
    result["pillar_s_small"] = pillar_seconds(lab)
    result["small"] = measure(lab, "scale-small", LAB_DOMAINS, args.kills, args.timeout)
    domains = _scale_pillar.write(args.domains - len(LAB_DOMAINS))
    try:
        _scale_pillar.seed_dkim(lab, domains)
        result["pillar_s_large"] = pillar_seconds(lab)
        result["apply_dns_s"] = round(_scale_pillar.apply_dns(lab), 1)
        every = [*LAB_DOMAINS, *domains]
        steady(lab)
        rest = {"mail": {MX1_SVC, MX2_SVC}, "mx1": {MX1_SVC}}
        result["rest_full_check"] = full_check(every, rest)
        result["large"] = measure(lab, "scale-large", every, args.kills, args.timeout)
        result["failover_full_check"] = failover_full_check(lab, every, args.timeout)
    finally:
        t0 = time.monotonic()
        _scale_pillar.remove(lab)
        result["remove_s"] = round(time.monotonic() - t0, 1)
        result["restored_after_remove"] = dns_restored()
    a = result["small"]["kill_to_dns_both"]["p50"]
    b = result["large"]["kill_to_dns_both"]["p50"]
    result["ratio_kill_to_dns_both_p50"] = round(b / a, 3) if a and b else None
    out = REPO / "bench" / "results" / f"scale-{args.domains}.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    md = REPO / "bench" / "results" / "scale.md"
    md.write_text(f"# Failover against the number of domains (bench/scale_bench.py)\n\n"
                  f"{table(result)}\nRaw figures: {out.name}.\n")  # fmt: skip
    print(table(result))
    print(f"ratio (kill -> both servers, p50): {result['ratio_kill_to_dns_both_p50']}")
    print(f"written {out} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
