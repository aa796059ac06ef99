"""Helpers and constants of the vm tier (imported by conftest.py and the tests).

Kept out of conftest.py so that tests import them by a unique module name.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab" / "vm"))

import runner  # noqa: E402

PILLAR_ROOT = f"{runner.GUEST_REPO}/tests/vm/pillar"
RESOURCE = "r0"
DEVICE = "/dev/drbd0"
MOUNT = "/var/vmail"
CLUSTER = "vmstore"
PY = "/opt/mc-venv/bin/python"
GUEST_TESTS = f"{runner.GUEST_REPO}/tests/vm"
EVENT_LOG = "/var/log/mc-events.log"


def at_once(jobs: dict) -> dict:
    """Run ``{key: fn}`` each in a thread of its own; ``{key: fn()}`` once all are done (the
    first error raised, after every thread ended). The guests run TCG side by side."""
    out: dict = {}
    errors: list[BaseException] = []

    def one(key) -> None:
        try:
            out[key] = jobs[key]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


class VMCluster:
    """The booted pair plus helpers the tests share."""

    def __init__(self, pair: runner.Pair):
        self.pair = pair
        self.timings: dict[str, float] = {}

    def __getitem__(self, name: str) -> runner.Guest:
        return self.pair[name]

    @property
    def names(self) -> list[str]:
        return list(self.pair.guests)

    def setup_salt(self, guest: runner.Guest) -> None:
        guest.configure_salt(PILLAR_ROOT)
        guest.salt_call("saltutil.sync_all saltenv=base", timeout=300, check=True)
        self.start_event_sink(guest)

    def start_event_sink(self, guest: runner.Guest) -> None:
        """Listen on the minion event socket (no salt-minion runs): see event_sink.py."""
        path = guest.run(
            f"{PY} -c 'import os, salt.config, salt.transport.base as b; "
            'o = salt.config.minion_config("/etc/salt/minion"); '
            'print(os.path.join(o["sock_dir"], "minion_event_%s_pull.ipc" '
            '% b._minion_hash(hash_type=o["hash_type"], minion_id=o["id"])))\'',
            check=True,
        ).stdout.strip()
        guest.run(
            f"nohup python3 {GUEST_TESTS}/event_sink.py {path} {EVENT_LOG} "
            ">/dev/null 2>&1 </dev/null &",
            check=True,
        )

    def events(self, name: str) -> bytes:
        """Raw frames of the events fired in a guest so far."""
        res = self[name].run(f"cat {EVENT_LOG} 2>/dev/null | base64 -w0")
        return base64.b64decode(res.stdout or "")

    def calls(self, name: str, items: list, timeout: float = 900) -> list[dict]:
        """Many execution functions in one process (see guest_call.py); one result each."""
        res = self[name].run(
            f"{PY} {GUEST_TESTS}/guest_call.py", stdin=json.dumps(items), timeout=timeout
        )
        try:
            out = json.loads(res.stdout)
        except ValueError as exc:
            raise runner.GuestCommandError(res) from exc
        return out

    def calls_each(self, items: dict[str, list], timeout: float = 900) -> dict[str, list[dict]]:
        """calls() on several guests at the same time: ``{guest: items}`` -> ``{guest: out}``.

        Each batch pays 30-50 s of Python and loader start-up under TCG; the guests pay it
        side by side instead of one after the other."""
        return at_once({n: (lambda n=n: self.calls(n, items[n], timeout=timeout)) for n in items})

    def rets(self, name: str, items: list, timeout: float = 900) -> list:
        """Like calls(), but every call must succeed: returns the return values."""
        out = self.calls(name, items, timeout=timeout)
        bad = [o for o in out if not o["ok"]]
        assert not bad, f"{name}: {bad}"
        return [o["ret"] for o in out]

    def apply(self, name: str, pillar: dict | None = None, sls: str = "storage") -> dict:
        """``state.apply`` in one guest; returns the state return dict (raises if unparsable)."""
        t0 = time.monotonic()
        res, data = self[name].salt_call(f"state.apply {sls}", timeout=1200, pillar=pillar)
        self.timings[f"apply_{name}"] = round(time.monotonic() - t0, 1)
        if not isinstance(data, dict):
            raise AssertionError(f"state.apply on {name}: no state return\n{res}")
        return data

    def apply_both(self, pillar: dict | None = None, sls: str = "storage") -> dict[str, dict]:
        """Apply on mx1 and mx2 at the same time (the pair needs each other to converge)."""
        return at_once({n: (lambda n=n: self.apply(n, pillar=pillar, sls=sls)) for n in self.names})


#: the read-only calls the short tier checks on both guests, by label (see the ``reads`` fixture)
READS = {
    "functions_drbd": ["sys.list_functions", ["drbd"]],
    "functions_o2cb": ["sys.list_functions", ["o2cb"]],
    "drbd_version": ["drbd.version"],
    "drbd_config": ["drbd.config"],
    "drbd_resources": ["drbd.resources"],
    "drbd_role": ["drbd.role", [RESOURCE]],
    "drbd_cstate": ["drbd.cstate", [RESOURCE]],
    "drbd_dstate": ["drbd.dstate", [RESOURCE]],
    "drbd_has_metadata": ["drbd.has_metadata", [RESOURCE]],
    "drbd_is_synced": ["drbd.is_synced", [RESOURCE]],
    "drbd_wait_sync": ["drbd.wait_sync", [RESOURCE], {"timeout": 10}],
    "drbd_status": ["drbd.status"],
    "drbd_status_r0": ["drbd.status", [RESOURCE]],
    "drbd_split_brain": ["drbd.split_brain", [RESOURCE]],
    "drbd_check_config": ["drbd.check_config", [f"/etc/drbd.d/{RESOURCE}.res"]],
    "o2cb_list_clusters": ["o2cb.list_clusters"],
    "o2cb_list_nodes": ["o2cb.list_nodes", [CLUSTER]],
    "o2cb_cluster_info": ["o2cb.cluster_info", [CLUSTER]],
    "o2cb_cluster_status": ["o2cb.cluster_status", [CLUSTER]],
    "o2cb_fs_info": ["o2cb.fs_info", [DEVICE]],
    "o2cb_timeouts": ["o2cb.timeouts"],
    "o2cb_mounted": ["o2cb.mounted"],
}

#: calls that must fail (or find nothing), made on mx1 only, after the reads
BAD_RES = "/tmp/bad.res"
ERRORS = {
    "drbd_check_config_bad": ["drbd.check_config", [BAD_RES]],
    "drbd_role_nosuch": ["drbd.role", ["nosuch"]],
    # existing metadata is never overwritten: this must fail, and the disk stay in sync
    "drbd_createmd": ["drbd.createmd", [RESOURCE]],
    "drbd_is_synced_after": ["drbd.is_synced", [RESOURCE]],
    "o2cb_cluster_info_nosuch": ["o2cb.cluster_info", ["nosuch"]],
    "o2cb_list_nodes_nosuch": ["o2cb.list_nodes", ["nosuch"]],
}


def ok(reads: dict, name: str, label: str):
    """The return value of one call of the ``reads`` fixture, which must have succeeded."""
    one = reads[name][label]
    assert one["ok"], f"{name} {label}: {one['error']}"
    return one["ret"]


def failed_states(ret: dict) -> dict:
    return {k: v for k, v in ret.items() if not v.get("result")}


def changed_states(ret: dict) -> dict:
    return {k: v["changes"] for k, v in ret.items() if v.get("changes")}
