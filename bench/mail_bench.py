#!/opt/mc-venv/bin/python
"""
The mail path measured (issue 14, item 3), every path in one run, on the same node, with
Postfix's own load tool (smtp-source, one connection per message, as inbound mail comes):

  cluster   SMTP :25 -> SQL maps -> rspamd milter -> LMTP -> dovecot -> shared store (mx1)
  both      the same on mx1 and mx2 at once, one source per address of the MX name (DNS RR)
  plain     a throwaway postfix instance on mx1 -> local(8) -> ~/Maildir on the node's disk
  sink      smtp-sink on mx1: the ceiling (nothing is queued or delivered)

Per path: messages/s accepted (the source's wall time) and delivered (source start -> last
`status=sent`), delivery latency p50/p99 (each message's queue file created, the smtpd
`client=` line, -> its `status=sent` line, from the node's mail.log), postfix's own split of
the delay (delays=a/b/c/d: before the queue manager, in it, connection set-up, transmission)
and, for the cluster paths, the CPU each service spent per message (cgroup usage_usec).
Then IMAP logins/s and FETCH messages/s (imaplib, several connections) on mx1's service IP.
Rounds interleave the paths so that the machine's background load hits them alike; the
figures are the medians over the rounds.

Run as root on the host with a converged lab (holds the lab lock itself for the run):
    /opt/mc-venv/bin/python bench/mail_bench.py [--messages 1000] [--rounds 3]
Writes bench/results/mail-bench.json, .md and .png. Removes what it set up (the plain
instance, its user, smtp-sink, the bench messages in bob's INBOX) whatever happens.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "bench"))

import _mail_paths as paths  # noqa: E402
from _imap_load import imap_figures  # noqa: E402
from _mail_flow import resolve  # noqa: E402
from _selfheal_helpers import DNS_SERVERS  # noqa: E402
from conftest import LabHandle  # noqa: E402
from failover_bench import pct  # noqa: E402
from mclab.lab import Lab  # noqa: E402

RESULTS = REPO / "bench" / "results"
NODE_IP = {"mx1": "10.88.0.11", "mx2": "10.88.0.12"}
SVC_IP = {"10.88.0.111": "mx1", "10.88.0.112": "mx2"}
MAILBOX = "bob@example.test"
MX_NAME = "example.test"
GOAL = 0.80
CPU_TOP = 6  # services reported per path, the biggest consumers first
ANCHORS = {
    "smtp-source -> smtp-sink, one connection per message (msg/s)": 4650,
    "postfix -> local Maildir, delivered (msg/s)": "220-250",
}


def stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def log_lines(lab: LabHandle, node: str, pattern: str) -> list[str]:
    proc = lab.run(node, "grep", "-E", pattern, "/var/log/mail.log", timeout=120)
    return proc.stdout.splitlines()


def sent_lines(lab: LabHandle, node: str, rcpt: str) -> list[str]:
    # fixed strings: the address has a '+' (the bench's extension)
    script = f"grep -F {shlex.quote(f'to=<{rcpt}>')} /var/log/mail.log | grep -F status=sent"
    return lab.run(node, "sh", "-c", script, timeout=120).stdout.splitlines()


def cpu_usec(lab: LabHandle, node: str) -> dict[str, int]:
    """CPU each service of ``node`` has used so far (its cgroup's usage_usec), by unit."""
    script = (
        "cd /sys/fs/cgroup/unified/system.slice && for f in $(find . -name cpu.stat); do "
        "echo $(basename $(dirname $f)) $(sed -n 's/^usage_usec //p' $f); done"
    )
    out = {}
    for line in lab.run(node, "sh", "-c", script, timeout=60).stdout.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith(".service") and value.strip().isdigit():
            out[name.removesuffix(".service")] = int(value)
    return out


def smtp_source(lab: LabHandle, node: str, target: str, rcpt: str, count: int, tag: str,
                sessions: int) -> tuple[float, float]:  # fmt: skip
    """Run smtp-source on ``node`` against ``target``: (start, end) wall clock of the node."""
    script = (
        f"s=$(date +%s.%N); /usr/sbin/smtp-source -s {sessions} -m {count} "
        f"-f bench@outside.invalid -t {rcpt} -S {tag} -M source.invalid {target} "
        ">/dev/null || exit 1; echo $s $(date +%s.%N)"
    )
    proc = lab.run(node, "sh", "-c", script, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"smtp-source on {node} -> {target} failed: {proc.stderr[-800:]}")
    start, end = proc.stdout.split()
    return float(start), float(end)


def wait_delivered(lab: LabHandle, node: str, rcpt: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        lines = sent_lines(lab, node, rcpt)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def latencies(lab: LabHandle, node: str, sent: list[str]) -> dict:
    """Per message: queue file created (smtpd's client= line) -> status=sent; and the mean of
    postfix's delays=a/b/c/d."""
    qids = {line.split(": ", 2)[1]: stamp(line) for line in sent}
    created = {}
    for line in log_lines(lab, node, r"smtpd\[[0-9]+\]: [0-9A-F]+: client="):
        qid = line.split(": ", 2)[1]
        if qid in qids:
            created[qid] = stamp(line)
    lat = [qids[q] - created[q] for q in qids if q in created]
    split = [
        [float(x) for x in line.split("delays=", 1)[1].split(",", 1)[0].split("/")] for line in sent
    ]
    means = [round(statistics.mean(c), 4) for c in zip(*split, strict=True)]
    parts = dict(zip("abcd", means, strict=True))
    return {"latency": lat, "delays_mean": parts}


def one_path(lab: LabHandle, name: str, targets: list[tuple[str, str]], rcpt: str, count: int,
             tag: str, sessions: int, deliver: bool) -> dict:  # fmt: skip
    """``targets``: (node running the source and receiving, address); ``count`` per target."""
    cpu0 = {n: cpu_usec(lab, n) for n, _ in targets} if deliver else {}
    windows: dict[str, tuple[float, float]] = {}

    def run(node, target):
        windows[node] = smtp_source(lab, node, target, rcpt, count, tag, sessions)

    threads = [threading.Thread(target=run, args=t) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = count * len(targets)
    start = min(w[0] for w in windows.values())
    accepted_s = max(w[1] for w in windows.values()) - start
    out = {"path": name, "messages": total, "accepted_per_s": round(total / accepted_s, 1)}
    if not deliver:
        return out
    sent, lat, splits = [], [], []
    for node, _ in targets:
        lines = wait_delivered(lab, node, rcpt, count, timeout=60 + count / 5)
        sent += lines
        stats = latencies(lab, node, lines)
        lat += stats["latency"]
        splits.append(stats["delays_mean"])
    last = max(stamp(line) for line in sent)
    out.update(
        delivered=len(sent),
        delivered_per_s=round(len(sent) / (last - start), 1),
        latency_p50=pct(lat, 50),
        latency_p99=pct(lat, 99),
        delays_mean={k: round(statistics.mean(s[k] for s in splits), 4) for k in "abcd"},
    )
    if cpu0:
        cpu = {}
        for node, _ in targets:
            after = cpu_usec(lab, node)
            for svc, v in after.items():
                cpu[svc] = cpu.get(svc, 0) + v - cpu0[node].get(svc, 0)
        top = sorted(cpu.items(), key=lambda kv: -kv[1])[:CPU_TOP]
        out["cpu_ms_per_message"] = {s: round(v / 1000 / total, 2) for s, v in top}
        # every unit of the node (salt-minion, journald... included): the node's whole cost
        out["cpu_ms_per_message_all_units"] = round(sum(cpu.values()) / 1000 / total, 2)
    return out


def mx_addresses() -> list[str]:
    ips = []
    for host in resolve(DNS_SERVERS["ns1"], MX_NAME, "MX"):
        ips += resolve(DNS_SERVERS["ns1"], host, "A")
    return sorted(set(ips))


def one_round(lab: LabHandle, run_id: str, rnd: int, count: int, sessions: int) -> list[dict]:
    tag = f"mcbench-{run_id}-{rnd}"
    ip1 = NODE_IP["mx1"]
    rr = [(SVC_IP[ip], ip) for ip in mx_addresses()]
    if sorted(n for n, _ in rr) != ["mx1", "mx2"]:
        raise SystemExit(f"{MX_NAME}'s MX does not lead to both service IPs: {rr}")
    local, domain = MAILBOX.split("@")
    specs = [
        ("sink", [("mx1", f"{ip1}:{paths.SINK_PORT}")], "x@sink.invalid", False),
        ("plain", [("mx1", f"{ip1}:{paths.PLAIN_PORT}")],
         f"{paths.USER}+{tag}@{paths.DOMAIN}", True),
        ("cluster", [("mx1", "10.88.0.111:25")], f"{local}+{tag}-one@{domain}", True),
        ("both", [(n, f"{ip}:25") for n, ip in rr], f"{local}+{tag}-rr@{domain}", True),
    ]  # fmt: skip
    out = []
    for name, targets, rcpt, deliver in specs:
        res = one_path(lab, name, targets, rcpt, count, tag, sessions, deliver)
        res["round"] = rnd
        print(json.dumps(res), flush=True)
        out.append(res)
    return out


def smtp_phases(lab: LabHandle, run_id: str, count: int) -> dict:
    """Each SMTP step's time, sequential, plain vs cluster on mx1 (bench/_smtp_phases.py)."""
    script = (REPO / "bench" / "_smtp_phases.py").read_text()
    local, domain = MAILBOX.split("@")
    targets = {
        "plain": (NODE_IP["mx1"], paths.PLAIN_PORT, f"{paths.USER}+phases@{paths.DOMAIN}"),
        "cluster": ("10.88.0.111", 25, f"{local}+mcbench-phases@{domain}"),
    }
    out = {}
    for name, (host, port, rcpt) in targets.items():
        cmd = ["python3", "-", host, str(port), rcpt, str(count), f"mcbench-{run_id}-phases"]
        proc = lab.lab.run("mx1", cmd, capture=True, input=script, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"SMTP step timing of {name} failed: {proc.stderr[-800:]}")
        out[name] = json.loads(proc.stdout)
    return out


def median_of(runs: list[dict], path: str, key: str):
    vals = [r[key] for r in runs if r["path"] == path and r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def summarise(runs: list[dict], imap: dict) -> dict:
    keys = ("accepted_per_s", "delivered_per_s", "latency_p50", "latency_p99")
    paths_ = {p: {k: median_of(runs, p, k) for k in keys} for p in ("sink", "plain", "cluster",
                                                                    "both")}  # fmt: skip
    for p in ("plain", "cluster", "both"):
        last = [r for r in runs if r["path"] == p][-1]
        paths_[p]["delays_mean_last_round"] = last["delays_mean"]
        if "cpu_ms_per_message" in last:
            paths_[p]["cpu_ms_per_message_last_round"] = last["cpu_ms_per_message"]
            paths_[p]["cpu_ms_per_message_all_units"] = median_of(
                runs, p, "cpu_ms_per_message_all_units"
            )
    plain = paths_["plain"]["delivered_per_s"]
    ratios = {
        "cluster_one_node / plain (delivered/s)": round(paths_["cluster"]["delivered_per_s"]
                                                        / plain, 3),
        "cluster_both_nodes / plain (delivered/s)": round(paths_["both"]["delivered_per_s"]
                                                          / plain, 3),
        "plain / sink (accepted/s)": round(plain / paths_["sink"]["accepted_per_s"], 3),
        "cluster_one_node / sink (accepted/s)": round(paths_["cluster"]["accepted_per_s"]
                                                      / paths_["sink"]["accepted_per_s"], 3),
    }  # fmt: skip
    return {
        "paths": paths_,
        "ratios": ratios,
        "goal": f"cluster one node >= {GOAL:.0%} of plain (delivered/s)",
        "goal_met": ratios["cluster_one_node / plain (delivered/s)"] >= GOAL,
        "imap": imap,
        "anchors": ANCHORS,
    }


def report(summary: dict, meta: dict) -> str:
    rows = [
        "| path | accepted msg/s | delivered msg/s | latency p50 s | latency p99 s |",
        "|---|---|---|---|---|",
    ]
    for p, v in summary["paths"].items():
        rows.append(
            f"| {p} | {v['accepted_per_s']} | {v['delivered_per_s'] or '-'} "
            f"| {v['latency_p50'] or '-'} | {v['latency_p99'] or '-'} |"
        )
    rows += ["", "| ratio | value |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in summary["ratios"].items()]
    rows += ["", f"goal: {summary['goal']}: {'met' if summary['goal_met'] else 'MISSED'}", ""]
    rows += ["postfix's delay split, mean s (a: before qmgr incl. smtpd+milter+cleanup, "
             "b: in qmgr, c: connect, d: delivery):"]  # fmt: skip
    for p in ("plain", "cluster", "both"):
        rows.append(f"- {p}: {summary['paths'][p]['delays_mean_last_round']}")
    rows.append(
        "CPU ms per message, all units of the node (median), and the top units (last round):"
    )
    for p in ("plain", "cluster", "both"):
        v = summary["paths"][p]
        rows.append(
            f"- {p}: {v.get('cpu_ms_per_message_all_units')}; "
            f"{v.get('cpu_ms_per_message_last_round')}"
        )
    rows.append("SMTP steps, one message after the other, ms median / max:")
    for p, steps in summary["smtp_steps_ms_median_max"].items():
        rows.append(f"- {p}: " + ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in steps.items()))
    im = summary["imap"]
    rows += ["", f"IMAP on {im['host']}: {im['logins_per_s']} logins/s, "
             f"{im['fetch_messages_per_s']} messages fetched/s ({im['connections']} "
             f"connections, {im['seconds']} s each)", "", f"run: {json.dumps(meta)}"]  # fmt: skip
    return "\n".join(rows) + "\n"


def plot(summary: dict, out: Path) -> None:
    """Delivered (accepted for the sink) messages/s per path, with the 80 % line: the one
    picture that says whether the goal holds and how far the ceiling is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["paths"])
    vals = [v["delivered_per_s"] or v["accepted_per_s"] for v in summary["paths"].values()]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(names, vals, color=["#888", "#4a7", "#47a", "#36c"])
    ax.axhline(summary["paths"]["plain"]["delivered_per_s"] * GOAL, color="red", ls="--",
               label=f"{GOAL:.0%} of plain")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("messages/s (log; sink: accepted, others: delivered)")
    ax.set_title("mail path, one run, same node (median of rounds)")
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:g}", ha="center", va="bottom")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def cleanup(lab: LabHandle, tag_prefix: str) -> None:
    lab.run("mx1", "sh", "-c", paths.teardown_script(), timeout=120)
    lab.run("mx1", "doveadm", "expunge", "-u", MAILBOX, "mailbox", "INBOX", "SUBJECT",
            tag_prefix, timeout=300)  # fmt: skip
    lab.run("mx1", "doveadm", "quota", "recalc", "-u", MAILBOX, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=10, help="smtp-source -s")
    parser.add_argument("--phase-messages", type=int, default=30, help="sequential, per path")
    parser.add_argument("--imap-connections", type=int, default=4)
    parser.add_argument("--imap-seconds", type=float, default=8.0)
    parser.add_argument("--out", default=str(RESULTS / "mail-bench"))
    args = parser.parse_args()
    lab = LabHandle(Lab())
    run_id = str(int(time.time()))
    t0 = time.monotonic()
    with open("/tmp/mc-lab.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = lab.run("mx1", "sh", "-c", paths.setup_script(NODE_IP["mx1"]), timeout=120)
            if proc.returncode != 0:
                raise SystemExit(f"bench instance on mx1 not set up: {proc.stderr[-1500:]}")
            runs = []
            for rnd in range(args.rounds):
                runs += one_round(lab, run_id, rnd, args.messages, args.sessions)
            phases = smtp_phases(lab, run_id, args.phase_messages)
            imap = imap_figures("10.88.0.111", MAILBOX, f"mcbench-{run_id}",
                                args.imap_connections, args.imap_seconds)  # fmt: skip
        finally:
            cleanup(lab, f"mcbench-{run_id}")
    summary = summarise(runs, imap)
    summary["smtp_steps_ms_median_max"] = phases
    meta = {"run_id": run_id, "messages_per_path_round": args.messages, "rounds": args.rounds,
            "sessions": args.sessions, "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip
    summary.update(meta=meta, runs=runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    text = report(summary, meta)
    out.with_suffix(".md").write_text("# mail path benchmark (bench/mail_bench.py)\n\n" + text)
    plot(summary, out.with_suffix(".png"))
    print(text)
    print(f"written to {out}.json, .md, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
