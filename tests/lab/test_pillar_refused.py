"""A bad pillar is refused on every node before anything changes; the corrected one converges.

The case of issue 12: mx1's service_ip set to ns1's address (heartbeat took it from ns1, and
the lab stayed broken after the pillar was corrected) together with a bad role key
(`ha:deadtime: -1`). With pillar/roles_test.sls holding both, a highstate on every node fails
naming both keys, runs no state, and no address moves on the pair or on ns1; without it, the
next highstate succeeds and every service IP is on its owner. Two or three applies.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from _roles_helpers import ALL_NODES, LOCAL_PILLAR, apply_all, summarize
from _selfheal_helpers import pair_settled
from mc_wait import wait_for

pytestmark = pytest.mark.lab


SUBNET = os.environ.get("MC_LAB_SUBNET", "10.88.0")
OWNERS = {f"{SUBNET}.111": "mx1", f"{SUBNET}.112": "mx2", f"{SUBNET}.21": "ns1"}
BAD = (
    "# written by tests/lab/test_pillar_refused.py (removed at its end)\n"
    f"mailcluster:\n  nodes:\n    mx1:\n      service_ip: {SUBNET}.21\n"
    "ha:\n  deadtime: -1\n"
)
KEYS = ("mailcluster:nodes:mx1:service_ip", "ha:deadtime")


def addresses(lab, node: str) -> set[str]:
    out = lab.run(node, "ip", "-o", "-4", "addr", "show").stdout
    return set(re.findall(r"\binet (\S+)", out))


def owners_hold_their_addresses(lab) -> dict[str, set[str]]:
    held = {n: addresses(lab, n) for n in ("mx1", "mx2", "ns1")}
    for ip, owner in OWNERS.items():
        on = sorted(n for n, addrs in held.items() if any(a.split("/")[0] == ip for a in addrs))
        assert on == [owner], f"{ip} is on {on}, not on {owner} only: {held}"
    return held


def wait_idle(lab, timeout: float = 900) -> None:
    """No state run on any node (one still running would answer our apply with "The function
    state.apply is running as PID ...", not with its result)."""

    def running():
        return {n: r for n, r in lab.salt_json("*", "state.running", timeout=120).items() if r}

    wait_for(running, timeout, 5, what="no state run going", until=lambda runs: not runs)


def test_bad_pillar_is_refused_and_the_corrected_one_converges(lab):
    LOCAL_PILLAR.unlink(missing_ok=True)
    lab.salt("*", "saltutil.sync_all", timeout=300)
    wait_idle(lab)
    pair_settled(lab)  # an earlier test's fault has healed
    before = owners_hold_their_addresses(lab)
    try:
        LOCAL_PILLAR.write_text(BAD)
        ret, seconds = apply_all(lab)
        assert set(ret) >= set(ALL_NODES), ret
        for node in ALL_NODES:
            out = ret[node]
            text = json.dumps(out)
            for key in KEYS:
                assert key in text, f"{node} did not name {key}: {text[:2000]}"
            if isinstance(out, dict):  # only the pillar check ran, and it failed
                assert [v["result"] for v in out.values()] == [False], out
                assert [v["changes"] for v in out.values()] == [{}], out
            else:  # the roles refused to render: no state ran at all
                assert isinstance(out, list) and out, out
        _failed, changed = summarize(ret)
        assert changed == 0
        print(f"bad pillar refused on {len(ret)} nodes in {seconds:.1f} s, 0 changes")
        # nothing moved: heartbeat did not take ns1's address, no node lost one
        assert {n: addresses(lab, n) for n in before} == before
    finally:
        LOCAL_PILLAR.unlink(missing_ok=True)
    wait_idle(lab)
    ret, seconds = apply_all(lab)
    failed, _changed = summarize(ret)
    assert not failed, "\n".join(failed)
    print(f"corrected pillar applied on {len(ret)} nodes in {seconds:.1f} s")
    owners_hold_their_addresses(lab)
