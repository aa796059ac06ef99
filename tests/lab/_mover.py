"""Switch the lab's mail pair between its two movers (pillar ha:mover, docs/keepalived.md),
for tests/lab/test_keepalived.py and bench/mover_bench.py.

The switch is a pillar override in ``pillar/local.sls`` (git-ignored, the developers' file:
left alone when someone else's is there) and ``state.apply ha`` on the pair, the way a site
switches; switching back removes the file and applies again.
"""

from __future__ import annotations

import json
import time

from mclab import util

LOCAL = util.REPO / "pillar" / "local.sls"
MARK = "# written by tests/lab/_mover.py: the pair's mover for a test or bench run\n"
PAIR = ("mx1", "mx2")


def movers_active(lab, node: str) -> dict[str, str]:
    proc = lab.run(node, "systemctl", "is-active", "heartbeat", "keepalived", timeout=60)
    return dict(zip(("heartbeat", "keepalived"), proc.stdout.split(), strict=True))


def switch(lab, mover: str, timeout: float = 600) -> dict:
    """Make ``mover`` the pair's mover; returns the apply's state results per node (failures
    raise). keepalived must be installable in the nodes (lab/packages.txt has it)."""
    if LOCAL.exists() and not LOCAL.read_text().startswith(MARK):
        raise AssertionError(f"{LOCAL} is someone else's pillar override: not touching it")
    if mover == "heartbeat":
        LOCAL.unlink(missing_ok=True)
    else:
        LOCAL.write_text(f"{MARK}ha:\n  mover: {mover}\n")
    target = ",".join(PAIR)
    lab.salt("-L", target, "saltutil.refresh_pillar", "--out=json", timeout=120)
    proc = lab.salt("-L", target, "state.apply", "ha", "--out=json", "--static", timeout=timeout)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"state.apply ha printed no JSON: {proc.stdout}{proc.stderr}"
        ) from None
    failed = {
        node: [f"{k}: {v.get('comment')}" for k, v in ret.items() if not v.get("result")]
        for node, ret in data.items()
        if not isinstance(ret, dict) or any(not v.get("result") for v in ret.values())
    }
    if failed or set(data) != set(PAIR):
        raise AssertionError(f"switch to {mover}: {failed or data}")
    for node in PAIR:
        want = {"heartbeat": "active", "keepalived": "inactive"}
        if mover == "keepalived":
            want = {"heartbeat": "inactive", "keepalived": "active"}
        got = movers_active(lab, node)
        if got != want:
            raise AssertionError(f"{node} after the switch to {mover}: {got}")
    return data


def own_ips_home(lab, timeout: float = 60) -> None:
    """Each mail node holds its own service IP and not the other's."""
    want = {"mx1": "10.88.0.111", "mx2": "10.88.0.112"}
    deadline = time.monotonic() + timeout
    while True:
        held = {n: lab.run(n, "ip", "-o", "-4", "addr", "show", timeout=30).stdout for n in PAIR}
        ok = all(
            want[n] in held[n] and want[o] not in held[n] for n in PAIR for o in PAIR if o != n
        )
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"service IPs not home: {held}")
        time.sleep(0.5)
