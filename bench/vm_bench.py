#!/opt/mc-venv/bin/python
"""Benchmark of the real storage tier (qemu guests, DRBD 8.4 + OCFS2).

Measures: guest image build time (from the cache manifest; ``--rebuild`` measures a cold
build now), boot time of each guest, ``state.apply storage`` time per guest (first apply on
bare guests, then the no-change re-apply), and the I/O pause on the survivor after a hard
kill of its peer, for each o2cb timeout profile (default and short). One fresh pair per
profile (o2cb timeouts apply when the cluster comes online). Two guests at most at a time.

Writes ``bench/results/vm.json`` and ``bench/results/vm.md``.

Usage: ``bench/vm_bench.py [--profiles default,short] [--rebuild]`` (root, about 4-6 min per
profile on 2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab" / "vm"))

import build_image  # noqa: E402
import runner  # noqa: E402
from _o2cb_profiles import DRBD, PROFILES, storage_pillar  # noqa: E402

RESULTS = REPO / "bench" / "results"
PILLAR_ROOT = f"{runner.GUEST_REPO}/tests/vm/pillar"
MOUNT = "/var/vmail"


def log(msg: str) -> None:
    print(f"[vm_bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def apply_both(pair: runner.Pair, pillar: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}

    def one(g: runner.Guest) -> None:
        t0 = time.monotonic()
        res, data = g.salt_call("state.apply storage", timeout=1500, pillar=pillar)
        failed = [k for k, v in (data or {}).items() if not v.get("result")]
        changed = [k for k, v in (data or {}).items() if v.get("changes")]
        out[g.name] = {
            "seconds": round(time.monotonic() - t0, 1),
            "rc": res.rc,
            "states": len(data or {}),
            "failed": failed,
            "changed": len(changed),
        }

    threads = [threading.Thread(target=one, args=(g,)) for g in pair]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run_profile(name: str, timeouts: dict) -> dict:
    pillar = storage_pillar(name)
    result: dict = {"profile": name, "timeouts": timeouts, "drbd": DRBD.get(name, {})}
    with runner.Pair() as pair:
        result["boot_s"] = {g.name: g.boot_seconds for g in pair}
        log(f"{name}: booted {result['boot_s']}")
        for g in pair:
            g.configure_salt(PILLAR_ROOT)
        t0 = time.monotonic()
        threads = [
            threading.Thread(
                target=g.salt_call, args=("saltutil.sync_all saltenv=base",), kwargs={"check": True}
            )
            for g in pair
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result["sync_all_s"] = round(time.monotonic() - t0, 1)
        first = apply_both(pair, pillar)
        result["apply_first"] = first
        log(f"{name}: first apply {first}")
        if any(v["failed"] for v in first.values()):
            result["error"] = "first apply failed"
            return result
        again = apply_both(pair, pillar)
        result["apply_again"] = again
        log(f"{name}: second apply {again}")
        # both nodes take cluster locks on the directory, so the survivor's next create
        # needs the dead node's locks: it waits for eviction and journal replay
        for g in pair:
            g.run(f"echo {g.name} > {MOUNT}/lock-{g.name} && sync", check=True)
        survivor, victim = pair["mx1"], pair["mx2"]
        live = survivor.run(
            "cat /sys/kernel/config/cluster/*/heartbeat/dead_threshold "
            "/sys/kernel/config/cluster/*/idle_timeout_ms",
            check=True,
        ).stdout.split()
        result["configfs_timeouts"] = live
        t_kill = time.monotonic()
        victim.kill()
        try:
            probe = survivor.run(
                f"echo after-kill > {MOUNT}/probe-after-kill && sync && cat {MOUNT}/lock-mx2",
                timeout=600,
            )
        except ConnectionError:
            result["error"] = "the survivor fenced itself (o2cb heartbeat write timeout)"
            result["console_tail"] = survivor.console_tail(6)
            log(f"{name}: {result['error']}")
            return result
        pause = round(time.monotonic() - t_kill, 1)
        result["io_pause_s"] = pause
        result["probe_rc"] = probe.rc
        role = survivor.salt_call("drbd.role r0")[1]
        result["survivor_role"] = role
        log(f"{name}: I/O pause on the survivor {pause} s (rc {probe.rc}), role {role}")
    return result


def write_results(data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vm.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# vm tier benchmark (qemu TCG guests, DRBD 8.4 + OCFS2)",
        "",
        f"Measured {data['date']} on {data['host']} ({data['cpus']} CPUs shared with other "
        "work). Guests: 1 vCPU, "
        f"{runner.MEM_MB} MiB, tb-size {runner.TB_SIZE}.",
        "",
        f"- guest image build (cold cache): {data['image'].get('build_s')} s "
        f"(debootstrap {data['image'].get('timings', {}).get('debootstrap_s')} s, "
        f"packages {data['image'].get('timings', {}).get('packages_s')} s); "
        f"rootfs {data['image'].get('rootfs_mb')} MB",
        "",
        "| profile (threshold/idle/keepalive) | boot mx1/mx2 s | first apply mx1/mx2 s "
        "| re-apply mx1/mx2 s | I/O pause after kill s |",
        "|---|---|---|---|---|",
    ]
    for r in data["profiles"]:
        t = r["timeouts"]
        first = r.get("apply_first", {})
        again = r.get("apply_again", {})

        def pair_of(d, key="seconds"):
            return "/".join(str(d.get(n, {}).get(key, "-")) for n in ("mx1", "mx2"))

        drbd = ", DRBD ping-int " + str(r["drbd"]["ping_int"]) if r.get("drbd") else ""
        lines.append(
            f"| {r['profile']} ({t['dead_threshold']}/{t['idle_timeout_ms']}/"
            f"{t['keepalive_delay_ms']}{drbd}) | {r['boot_s'].get('mx1')}/{r['boot_s'].get('mx2')} "
            f"| {pair_of(first)} | {pair_of(again)} | {r.get('io_pause_s', r.get('error'))} |"
        )
    lines += [
        "",
        "I/O pause: from the SIGKILL of mx2's qemu to the completion, on mx1, of a file "
        "create + sync + read in a directory both nodes had written to (it needs the dead "
        "node's locks: DRBD notices the loss, o2cb evicts the node, OCFS2 replays its journal).",
        "",
    ]
    (RESULTS / "vm.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="default,short")
    ap.add_argument("--rebuild", action="store_true", help="measure a cold image build now")
    args = ap.parse_args(argv)
    ok, why = runner.available()
    if not ok:
        print(f"vm bench: {why}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    image = build_image.ensure_image(force=args.rebuild)
    manifest = json.loads((image / "manifest.json").read_text())
    image_info = {
        "key": manifest["key"],
        "build_s": manifest["timings"].get("total_s"),
        "timings": manifest["timings"],
        "rootfs_mb": manifest.get("rootfs_mb"),
        "cached_lookup_s": None if args.rebuild else round(time.monotonic() - t0, 2),
    }
    data = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "cpus": __import__("os").cpu_count(),
        "guest": {"mem_mb": runner.MEM_MB, "tb_size": runner.TB_SIZE, "smp": 1},
        "image": image_info,
        "profiles": [],
    }
    previous = RESULTS / "vm.json"
    if previous.exists():
        # a run of some profiles keeps the others' figures (and the last cold build time)
        old = json.loads(previous.read_text())
        data["profiles"] = [p for p in old.get("profiles", []) if p["profile"] in PROFILES]
        if not args.rebuild and old.get("image", {}).get("key") == image_info["key"]:
            data["image"] = dict(old["image"], cached_lookup_s=image_info["cached_lookup_s"])
    for name in args.profiles.split(","):
        data["profiles"] = [p for p in data["profiles"] if p["profile"] != name]
        data["profiles"].append(run_profile(name, PROFILES[name]))
        data["profiles"].sort(key=lambda p: list(PROFILES).index(p["profile"]))
        write_results(data)
    write_results(data)
    log(f"wrote {RESULTS / 'vm.json'} and vm.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
