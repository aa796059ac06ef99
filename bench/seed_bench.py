#!/opt/mc-venv/bin/python
"""The seed's whole cluster measured (issue 11 item 6): mx1 and mx2 as qemu guests on DRBD
dual primary + OCFS2, postfix, dovecot and heartbeat on both, the master's reactor on DNS.

Per o2cb profile (bench/_o2cb_profiles.py: o2cb's defaults, then the short one), while an
MTA-like sender delivers through DNS round robin, mx1 loses its power (``lab kill``); in
seconds after the kill: mx1's IP answering IMAP on mx2, DNS naming mx2 only, the first
message accepted after the kill and readable on mx2 (the OCFS2 recovery pause); then mx1 is
started and, untouched, from its start: its services up, DRBD in sync with OCFS2 mounted,
DNS as pillar says. Every accepted message is counted in the INBOX (lost, twice). The
guests' memory is read at the end. The nspawn lab's figures (bench/results/
failover-deadtime2.json, a run of its own: one lab runs at a time here) stand beside them.

A profile other than the one the cluster runs is put in place first: its timeouts go to
pillar/local.sls (only if that file does not exist; removed at the end), the mail services,
the store and o2cb are stopped on both guests (o2cb takes new timeouts only when it comes
online, and both nodes must agree), and a highstate brings everything back.

Run as root with `lab/lab up --storage drbd` converged:
    /opt/mc-venv/bin/python bench/seed_bench.py [--profiles default,short]
About 15 min per profile on 2 shared cores (20-25 with a profile switch).
Writes bench/results/seed.json and seed.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# tests/lab first: its conftest (LabHandle) is the one imported as "conftest"
for sub in ("tests/lab", "tests", "tests/seed", "lab"):
    sys.path.append(str(REPO / sub))

from _mail_flow import Sender  # noqa: E402
from _o2cb_profiles import PROFILES, storage_pillar  # noqa: E402
from _power_cut import SVC, boot_back, power_cut  # noqa: E402
from _roles_helpers import apply_all, imap_header, state_results  # noqa: E402
from _selfheal_helpers import DNS_SERVERS, dns_restored  # noqa: E402
from conftest import LabHandle  # noqa: E402
from mc_wait import wait_for  # noqa: E402
from mclab.lab import Lab  # noqa: E402

RESULTS = REPO / "bench" / "results"
LOCAL = REPO / "pillar" / "local.sls"
NSPAWN = RESULTS / "failover-deadtime2.json"
GUESTS = ("mx1", "mx2")
USER = "bob@example.test"
CONFIGFS = "/sys/kernel/config/cluster/mailstore"


def log(msg: str) -> None:
    print(f"[seed_bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def running_timeouts(lab: LabHandle, node: str) -> dict:
    """The o2cb timeouts the node's online cluster runs with (configfs)."""
    paths = {
        "dead_threshold": f"{CONFIGFS}/heartbeat/dead_threshold",
        "idle_timeout_ms": f"{CONFIGFS}/idle_timeout_ms",
        "keepalive_delay_ms": f"{CONFIGFS}/keepalive_delay_ms",
        "reconnect_delay_ms": f"{CONFIGFS}/reconnect_delay_ms",
    }
    out = {}
    for key, path in paths.items():
        text = lab.run(node, "cat", path, timeout=60).stdout.strip()
        out[key] = int(text) if text.isdigit() else None
    return out


def current_profile(lab: LabHandle) -> str | None:
    running = [running_timeouts(lab, n) for n in GUESTS]
    return next((k for k, v in PROFILES.items() if all(r == v for r in running)), None)


def switch_profile(lab: LabHandle, name: str) -> dict:
    """Put profile ``name`` in place on the pair (see the module doc); returns what it did."""
    if current_profile(lab) == name:
        return {"switched": False}
    if name == "default":  # the role's defaults: no override
        LOCAL.unlink(missing_ok=True)
    else:
        LOCAL.write_text("# written by bench/seed_bench.py, removed at its end\n"
                         + yaml.safe_dump(storage_pillar(name)))  # fmt: skip
    t0 = time.monotonic()
    for node in GUESTS:
        stop = "systemctl stop heartbeat postfix dovecot mailcluster-store && /etc/init.d/o2cb stop"
        proc = lab.run(node, "sh", "-c", stop, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"{node}: '{stop}' failed: {proc.stderr.strip()}")
    ret, seconds = apply_all(lab, timeout=3600)
    failed, _ = state_results(ret)
    if failed:
        raise SystemExit("the highstate after the profile switch failed:\n" + "\n".join(failed))
    for node in GUESTS:
        if running_timeouts(lab, node) != PROFILES[name]:
            raise SystemExit(f"{node} does not run profile {name}: {running_timeouts(lab, node)}")
    return {"switched": True, "switch_s": round(time.monotonic() - t0, 1), "highstate_s": seconds}


def mail_count(sender: Sender, tag: str) -> dict:
    accepted = {m.message_id for m in sender.accepted()}

    def copies():
        ids = imap_header(SVC["mx2"], USER, "MESSAGE-ID", timeout=60)
        got = {i: ids.count(i) for i in set(ids) if i.startswith(f"<flow-{tag}-")}
        return got if accepted <= set(got) else None

    try:
        seen = wait_for(copies, 300, 5, what="every accepted message in the INBOX")
    except AssertionError:
        seen = {i: 1 for i in imap_header(SVC["mx2"], USER, "MESSAGE-ID", timeout=60)}
    return {
        "sent": len(sender.messages),
        "accepted": len(accepted),
        "lost": len(accepted - set(seen)),
        "twice": sum(1 for mid, n in seen.items() if mid in accepted and n > 1),
    }


def memory(lab: LabHandle) -> dict:
    out = {}
    for node in GUESTS:
        used = lab.run(node, "sh", "-c", "free -m | awk '/^Mem:/ {print $3}'").stdout.strip()
        pid = (lab.lab.dir / "nodes" / node / "qemu.pid").read_text().strip()
        rss = Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]
        out[node] = {"guest_used_mb": int(used or 0), "qemu_rss_mb": int(rss) // 1024}
    return out


def run_profile(lab: LabHandle, name: str, watch: float) -> dict:
    log(f"profile {name}: {PROFILES[name]}")
    result = {"profile": name, "timeouts": PROFILES[name], **switch_profile(lab, name)}
    wait_for(dns_restored, 600, 2, what="DNS as pillar says before the cut")
    tag = f"{name}-{int(time.time())}"
    sender = Sender(DNS_SERVERS["ns1"], USER, tag, interval=0.5, smtp_timeout=60, retry_delay=2)
    sender.start()
    try:
        wait_for(lambda: len(sender.accepted()) >= 5, 300, 1, what="5 messages accepted")
        log("power cut of mx1")
        cut = power_cut(lab, "mx1", "mx2", sender, USER, watch_s=watch)
        log(f"cut: {cut['kill_to_ip_answered_s']} s IP, {cut['kill_to_dns_repointed_s']} s DNS")
        back = boot_back(lab, "mx1")
        log(f"back: {back}")
    finally:
        sender.stop(drain_timeout=180)
    keep = ("kill_to_ip_answered_s", "kill_to_dns_repointed_s",
            "kill_to_first_delivery_on_survivor_s", "dns_samples")  # fmt: skip
    result.update({k: cut[k] for k in keep}, **back)
    result["survivor_left_dns"] = len(cut["survivor_left_dns"])
    result["survivor_restarted"] = cut["survivor_units_after"] != cut["survivor_units_before"]
    result["mail"] = mail_count(sender, tag)
    return result


def nspawn_figures() -> dict:
    if not NSPAWN.exists():
        return {}
    d = json.loads(NSPAWN.read_text())
    return {
        "source": str(NSPAWN.relative_to(REPO)),
        "heartbeat": d["heartbeat"],
        "kill_to_ip_answered_s": d["kill_to_imap_on_lost_ip"]["p50"],
        "kill_to_dns_repointed_s": d["kill_to_dns_both"]["p50"],
        "boot_to_dns_restored_s": d["boot_to_dns_restored"]["p50"],
        "kills": d["kills"],
    }


ROWS = (
    ("kill -> mx1's IP answers IMAP on mx2", "kill_to_ip_answered_s"),
    ("kill -> DNS names mx2 only", "kill_to_dns_repointed_s"),
    ("kill -> first delivery on mx2 (OCFS2 pause)", "kill_to_first_delivery_on_survivor_s"),
    ("boot -> mx1's services up", "boot_to_services_s"),
    ("boot -> DRBD in sync, OCFS2 mounted", "boot_to_store_in_sync_s"),
    ("boot -> DNS restored", "boot_to_dns_restored_s"),
)


def write_results(data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "seed.json").write_text(json.dumps(data, indent=1) + "\n")
    profiles, ns = data["profiles"], data["nspawn"]
    head = " | ".join(p["profile"] for p in profiles)
    lines = [
        "# The seed's cluster: mx1 powered off under mail (bench/seed_bench.py)",
        "",
        f"Measured {data['date']}, 2 shared cores, guests under TCG. Seconds; nspawn: p50 of "
        f"{ns.get('kills')} kills in {ns.get('source')} (heartbeat deadtime "
        f"{ns.get('heartbeat', {}).get('deadtime')} s; the guests run deadtime 8 s).",
        "",
        f"| what | {head} | nspawn lab |",
        "|---|" + "---|" * (len(profiles) + 1),
    ]
    for label, key in ROWS:
        cells = " | ".join(str(p.get(key)) for p in profiles)
        lines.append(f"| {label} | {cells} | {ns.get(key, '-')} |")
    for label, fn in (
        ("accepted / lost / twice", lambda p: "{accepted} / {lost} / {twice}".format(**p["mail"])),
        ("mx2 out of DNS / restarted", lambda p: f"{p['survivor_left_dns']} / "
                                                 f"{p['survivor_restarted']}"),
    ):  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(fn(p) for p in profiles) + " | - |")
    lines += ["", f"Memory per guest at the end: {json.dumps(data.get('memory'))}", ""]
    (RESULTS / "seed.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="default,short")
    ap.add_argument("--watch", type=float, default=150, help="seconds watched after the kill")
    args = ap.parse_args(argv)
    names = args.profiles.split(",")
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        ap.error(f"--profiles: unknown {unknown}; known: {sorted(PROFILES)}")
    instance = Lab()
    state = instance.load_state()
    if not state or state.get("storage") != "drbd":
        ap.error("needs `lab/lab up --storage drbd`, converged")
    if LOCAL.exists():
        ap.error(f"{LOCAL} exists (someone else's override): not touching it")
    lab = LabHandle(instance)
    data = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "profiles": [], "nspawn": nspawn_figures()}  # fmt: skip
    initial = current_profile(lab) or "default"
    try:
        for name in names:
            data["profiles"].append(run_profile(lab, name, args.watch))
            write_results(data)
    finally:
        # the cluster goes back to what it ran before (pillar/ without local.sls)
        LOCAL.unlink(missing_ok=True)
        if current_profile(lab) != initial:
            log(f"back to profile {initial}")
            switch_profile(lab, initial)
            LOCAL.unlink(missing_ok=True)
    data["memory"] = memory(lab)
    write_results(data)
    log(f"wrote {RESULTS / 'seed.json'} and seed.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
