#!/opt/mc-venv/bin/python
"""Convergence that scales (issue 14, item 2), measured in an nspawn lab, every size in one run.

For each size N (default 10, 1,000 and 10,000 generated domains, 10 mailboxes and one alias
each, on top of the lab pillar's own):

1. converge the lab to N domains (``setup``: not a figure, it writes what the size adds);
2. the master's pillar render: ``salt-run pillar.show_pillar ns1`` (the master alone) and
   ``salt '*' saltutil.refresh_pillar wait=True`` (every minion's pillar at once);
3. the second apply: ``salt '*' state.apply`` with nothing to change (0 changed states);
4. the apply that adds one domain (N + 1).

Every figure is also given as a ratio to the 10-domain (smallest size's) figure of the same run
(issue 14's goal: at most 1.5 at 10,000). The generated domains go into pillar/roles_test.sls of
the checkout the lab mounts (run this file from that checkout); their DKIM keys are copies of
example.test's, made on the master before the pillar names them (the master's ext_pillar would
otherwise make one 2048-bit RSA key per domain: minutes at 10,000, not what is measured). The
ACME role is switched off for the run (``acme:server: null``): one certificate with six names
per domain is 60,000 names at 10,000 domains, which no ACME CA issues (docs/converge-scale.md).

Writes bench/results/converge-scale.json (and .md). The lab must be up and converged:

    MC_LAB=h1 MC_LAB_SUBNET=10.89.0 bench/converge_bench.py [--sizes 10,1000,10000]
        [--deadline 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _converge_pillar  # noqa: E402

LAB = str(REPO / "lab" / "lab")
PILLAR = REPO / "pillar" / "roles_test.sls"
OUT = REPO / "bench" / "results" / "converge-scale.json"
NODES = ("salt", "mx1", "mx2", "ns1", "ns2")
DKIM_DIR = "/var/lib/salt/mailcluster/dkim"
#: beside the generated domains: no ACME for the run (see the module's docstring)
NO_ACME = {"acme": {"server": None}}
#: the minion watchdog's patience for the run: at 10,000 domains the master, rendering every
#: minion's pillar, touched the nodes late and the watchdog restarted minions mid-highstate
WATCHDOG = {"selfheal": {"watchdog": {"deaf_after": 3600}}}


def lab(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LAB, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def timed(*args: str, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    proc = lab(*args, timeout=timeout)
    return round(time.monotonic() - t0, 1), proc


def apply_all(timeout: float = 5400) -> tuple[float, dict]:
    """``salt '*' state.apply``, published async, collected from the job cache."""
    t0 = time.monotonic()
    proc = lab("salt", "*", "state.apply", "--async")
    jid = re.search(r"job ID: (\d+)", proc.stdout + proc.stderr)
    if not jid:
        raise RuntimeError(proc.stdout + proc.stderr)
    while True:
        time.sleep(2)
        raw = lab("salt-run", "jobs.lookup_jid", jid.group(1), "--out=json").stdout
        try:
            ret, _ = json.JSONDecoder().raw_decode(raw[raw.index("{") :])
        except ValueError:
            ret = {}
        if set(ret) >= set(NODES):
            return round(time.monotonic() - t0, 1), ret
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"no return from {set(NODES) - set(ret)}")


def summary(ret: dict) -> dict:
    """Changed and failed states, and per node the states' summed duration and the slowest."""
    changed, failed, states, nodes = 0, [], 0, {}
    for minion, result in sorted(ret.items()):
        if not isinstance(result, dict):
            failed.append(f"{minion}: {str(result)[:500]}")
            continue
        durations = []
        for key, st in result.items():
            states += 1
            changed += bool(st.get("changes"))
            durations.append((st.get("duration", 0) / 1000, key.split("_|-")[1]))
            if st.get("result") is False:
                failed.append(f"{minion}: {key}: {str(st.get('comment'))[:300]}")
        durations.sort(reverse=True)
        nodes[minion] = {
            "states": len(result),
            "state_seconds": round(sum(d for d, _ in durations), 1),
            "slowest": [[k, round(d, 2)] for d, k in durations[:3]],
        }
    return {"states": states, "changed_states": changed, "failed": failed, "nodes": nodes}


def seed_dkim(start: int, stop: int) -> None:
    """DKIM keys of the generated domains start..stop-1: copies of example.test's."""
    script = (
        f"cd {DKIM_DIR} && src=$(ls example.test/*.key | head -1) && sel=$(basename $src .key)"
        f" && for i in $(seq {start} {stop - 1}); do d=$(printf 'c%05d.{_converge_pillar.SUFFIX}'"
        " $i); [ -d $d ] || { mkdir -m 700 $d && cp -p $src $d/ && cp -p example.test/$sel.txt"
        " $d/; }; done"
    )
    proc = lab("run", "salt", "--", "sh", "-c", script, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"seeding DKIM keys failed: {proc.stderr[-2000:]}")


def write_domains(count: int) -> None:
    _converge_pillar.write(PILLAR, count, extra=NO_ACME, mailcluster=WATCHDOG)


def pillar_render() -> dict:
    show, proc = timed("salt-run", "pillar.show_pillar", "ns1", "--out=quiet")
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    refresh, proc = timed(
        "salt", "*", "saltutil.refresh_pillar", "wait=True", "--timeout=1800", "--out=json"
    )
    return {"show_pillar_ns1_seconds": show, "refresh_all_seconds": refresh}


def measure(size: int, seeded: int) -> dict:
    seed_dkim(seeded, size + 1)  # the added domain's key too: no RSA key made in the timing
    write_domains(size)
    t_setup, ret = apply_all()
    out: dict = {"domains": size, "setup": {"seconds": t_setup, **summary(ret)}}
    print(size, "setup", t_setup, out["setup"]["changed_states"], flush=True)
    out["pillar"] = pillar_render()
    print(size, "pillar", out["pillar"], flush=True)
    seconds, ret = apply_all()
    out["second_apply"] = {"seconds": seconds, **summary(ret)}
    print(size, "second", seconds, out["second_apply"]["changed_states"], flush=True)
    write_domains(size + 1)
    seconds, ret = apply_all()
    out["add_one"] = {"seconds": seconds, **summary(ret)}
    print(size, "add one", seconds, out["add_one"]["changed_states"], flush=True)
    return out


def ratios(sizes: list[dict]) -> None:
    base = sizes[0]
    figures = {
        "second_apply": lambda s: s["second_apply"]["seconds"],
        "add_one": lambda s: s["add_one"]["seconds"],
        "ns1_second_apply_state_seconds": lambda s: s["second_apply"]["nodes"]["ns1"][
            "state_seconds"
        ],
        "show_pillar": lambda s: s["pillar"]["show_pillar_ns1_seconds"],
        "refresh_pillar": lambda s: s["pillar"]["refresh_all_seconds"],
    }
    for entry in sizes:
        entry["ratio_to_smallest"] = {
            name: round(get(entry) / get(base), 2) if get(base) else None
            for name, get in figures.items()
        }


def markdown(results: dict) -> str:
    lines = [
        "# Convergence at 10, 1,000 and 10,000 domains (issue 14.2)",
        "",
        f"One run, lab `{results['lab']}` on `{results['host']}` ({results['cpus']} cores, load"
        f" {results['load_before']:.1f} before, {results['load_after']:.1f} after);"
        " 10 mailboxes and one alias per domain; ACME off (docs/converge-scale.md).",
        "",
        "| domains | second apply s (x) | changed | add one domain s (x) | show_pillar ns1 s (x)"
        " | refresh_pillar all s (x) |",
        "|---|---|---|---|---|---|",
    ]
    for s in results["sizes"]:
        r = s["ratio_to_smallest"]
        lines.append(
            f"| {s['domains']} | {s['second_apply']['seconds']} ({r['second_apply']}) |"
            f" {s['second_apply']['changed_states']} | {s['add_one']['seconds']} ({r['add_one']})"
            f" | {s['pillar']['show_pillar_ns1_seconds']} ({r['show_pillar']}) |"
            f" {s['pillar']['refresh_all_seconds']} ({r['refresh_pillar']}) |"
        )
    lines += ["", "Per node, second apply: states, summed state seconds, slowest states.", ""]
    for s in results["sizes"]:
        for node, n in s["second_apply"]["nodes"].items():
            lines.append(
                f"- {s['domains']} {node}: {n['states']} states, {n['state_seconds']} s,"
                f" {n['slowest']}"
            )
    if results.get("stopped"):
        lines += ["", f"Stopped: {results['stopped']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument(
        "--deadline", type=float, default=0, help="seconds: no new size starts after this"
    )
    args = parser.parse_args()
    if PILLAR.exists():
        raise SystemExit(f"{PILLAR} exists (another run's?): not touching it")
    # a stopped run still writes the sizes it measured and removes its pillar file
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped (SIGTERM)"))
    start = time.monotonic()
    results: dict = {
        "lab": os.environ.get("MC_LAB", "mclab"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "boxes_per_domain": 10,
        "target_ratio": 1.5,
        "sizes": [],
    }
    seeded = 0
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            if args.deadline and time.monotonic() - start > args.deadline:
                results["stopped"] = f"deadline reached before size {size}"
                break
            results["sizes"].append(measure(size, seeded))
            seeded = size + 1
            ratios(results["sizes"])
            write_out(results)
    except (Exception, SystemExit) as exc:  # the sizes measured so far are still written
        results["stopped"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
        raise
    finally:
        PILLAR.unlink(missing_ok=True)
        write_out(results)
    return 0


def write_out(results: dict) -> None:
    results["load_after"] = os.getloadavg()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    if results["sizes"] and "ratio_to_smallest" in results["sizes"][0]:
        OUT.with_suffix(".md").write_text(markdown(results))


if __name__ == "__main__":
    sys.exit(main())
