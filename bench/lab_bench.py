#!/usr/bin/env python3
"""Lab figures (issue 2): cold and warm `lab/lab up` of the 5 nodes, `lab/lab down`, memory.

Runs a separate lab instance (MC_LAB=mcbench, 10.92.0.0/24) so a lab that is up is untouched.
The cold run builds the base image into a separate state directory, so the shared image cache is
not thrown away. Writes bench/results/lab.json and bench/results/lab.md.

    bench/lab_bench.py [--warm-runs 3] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))

RESULTS = REPO / "bench" / "results"
TARGETS = {"warm_up_s": 60, "down_s": 20}


def lab_cli(env: dict, *args: str) -> float:
    start = time.monotonic()
    proc = subprocess.run([str(REPO / "lab/lab"), *args], env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"lab/lab {' '.join(args)} failed:\n{proc.stderr}")
    return took


def node_pss_mib(state_dir: Path, lab_name: str, node: str) -> float:
    """Proportional set size of every process in the node's cgroup, in MiB."""
    cgroup = Path("/sys/fs/cgroup/unified") / lab_name / node
    total_kib = 0
    for procs in cgroup.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in rollup.splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    base_env = dict(os.environ, MC_LAB="mcbench", MC_LAB_SUBNET="10.92.0")
    results: dict = {"nodes": 5, "cpus": os.cpu_count()}

    if not args.skip_cold:
        cold_state = Path("/var/lib/mailcluster-bench-cold")
        subprocess.run(["rm", "-rf", str(cold_state)], check=True)
        cold_env = dict(base_env, MC_STATE_DIR=str(cold_state))
        results["cold_up_s"] = round(lab_cli(cold_env, "up"), 1)
        results["cold_down_s"] = round(lab_cli(cold_env, "down"), 1)
        subprocess.run(["rm", "-rf", str(cold_state)], check=True)
        print(f"cold up (image build + boot): {results['cold_up_s']} s")

    warm, down, memory = [], [], {}
    for run in range(args.warm_runs):
        warm.append(lab_cli(base_env, "up"))
        if run == 0:
            time.sleep(5)  # let the minions settle before measuring memory
            from mclab.lab import DEFAULT_NODES

            memory = {n: round(node_pss_mib(Path(), "mcbench", n), 1) for n in DEFAULT_NODES}
        down.append(lab_cli(base_env, "down"))
        print(f"warm run {run + 1}: up {warm[-1]:.1f} s, down {down[-1]:.1f} s")
    results["warm_up_s"] = {
        "runs": [round(x, 1) for x in warm],
        "median": round(statistics.median(warm), 1),
    }
    results["down_s"] = {
        "runs": [round(x, 1) for x in down],
        "median": round(statistics.median(down), 1),
    }
    results["memory_pss_mib_bare"] = memory
    results["targets"] = TARGETS
    results["ratios"] = {
        "warm_up_vs_target": round(results["warm_up_s"]["median"] / TARGETS["warm_up_s"], 2),
        "down_vs_target": round(results["down_s"]["median"] / TARGETS["down_s"], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lab.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Lab figures (bench/lab_bench.py)",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| cold up (image build + 5 nodes) | {results.get('cold_up_s', 'not run')} s | |",
        f"| warm up, median of {len(warm)} | {results['warm_up_s']['median']} s | <= 60 s |",
        f"| down, median of {len(down)} | {results['down_s']['median']} s | <= 20 s |",
    ]
    lines += [f"| memory of bare {n} (PSS) | {m} MiB | |" for n, m in memory.items()]
    (RESULTS / "lab.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
