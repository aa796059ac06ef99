# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
The master as the third party of the DRBD pair (issue 11, docs/storage.md "Partition"): the
verdicts the arbiter engine (reactor/engines/mailcluster_arbiter.py) sends to a node's
fence-peer handler (salt/storage/files/fence_peer.py, which also defines the wire format).

A node asks when it lost its peer and DRBD froze its I/O. The master probes both nodes'
storage addresses from where it stands (ICMP echo):

- it cannot probe the asker, whose request it is reading: its probes say nothing (ICMP
  filtered?), so it grants nothing;
- the peer does not answer: dead, or cut off from everything: grant;
- both answer: the pair's link is cut and both are alive: grant to the partition keeper
  (``mailcluster:selfheal:partition_keeper``, default the first of the pair sorted: the same
  node the master keeps serving both service IPs), deny the other;
- a grant to one node of a resource is remembered ``hold`` s: the peer asking meanwhile is
  denied, whatever the probes say then (two grants in one episode would be a split brain).

- :py:func:`config`: the resources of the pillar's storage nodes: addresses, keeper, secret.
- :py:func:`verdict`: the decision above, from the probes' results (no I/O).
- :py:func:`decide`: probes, verdict, the grant remembered, for one request (the engine
  checks its signature and signs the reply).
"""

import logging
import subprocess
import threading
import time

import salt.utils.dictupdate
import salt.utils.files
import salt.utils.yaml

log = logging.getLogger(__name__)

__virtualname__ = "mcstore_arbiter"

#: {resource: {"node": ..., "at": ...}} of this process (the engine's threads share it)
_GRANTS = {}
_GRANTS_LOCK = threading.Lock()


def __virtual__():
    return __virtualname__


def config(minion=None, with_secrets=False):
    """``{resource: {"nodes": {name: address}, "keeper": name, "secret": str}}`` of the
    drbd_ocfs2 store in pillar (compiled on the master, over the storage role's defaults),
    and the arbiter's settings (``storage:drbd:arbiter``). The secret is ``"***"`` unless
    ``with_secrets`` (the engine's call, in its own process): a ``salt-run`` of this
    function keeps it out of the job cache."""
    pillar = __salt__["mcheal_ctx.compile_pillar"](minion, fresh=True)
    storage = salt.utils.dictupdate.merge(
        _role_defaults(), pillar.get("storage") or {}, merge_lists=False
    )
    drbd = storage.get("drbd") or {}
    arbiter = drbd.get("arbiter") or {}
    out = {
        "resources": {},
        "port": int(arbiter["port"]),
        "hold": float(arbiter["hold"]),
        "probes": int(arbiter["probes"]),
        "probe_timeout": float(arbiter["probe_timeout"]),
    }
    nodes = storage.get("nodes") or {}
    if storage.get("backend") != "drbd_ocfs2" or len(nodes) != 2 or not arbiter["enabled"]:
        return out
    pair = sorted(nodes)
    wanted = __salt__["mcheal_ctx.settings"](pillar).get("partition_keeper")
    out["resources"][drbd["resource"]] = {
        "nodes": {n: (nodes[n] or {}).get("address") for n in pair},
        "keeper": wanted if wanted in pair else pair[0],
        "secret": (drbd.get("shared_secret") or "") if with_secrets else "***",
    }
    return out


def _role_defaults():
    path = __salt__["mcheal_ctx.find_file"](
        "storage/parameters/defaults.yaml", "salt/storage/parameters/defaults.yaml"
    )
    if not path:
        raise FileNotFoundError("storage/parameters/defaults.yaml is in no file root")
    with salt.utils.files.fopen(path, "r") as fh:
        return salt.utils.yaml.safe_load(fh) or {}


def verdict(node, resource, conf, reach, grants, now):
    """``(verdict, reason)`` for ``node`` asking for ``resource``: ``reach`` maps each node of
    the pair to whether the master's probe reached it, ``grants`` is the last grant per
    resource (``{"node", "at"}``). Pure: no probe, no clock, no state."""
    res = conf["resources"].get(resource)
    if res is None:
        return "deny", f"{resource} is not a drbd_ocfs2 resource of the pillar"
    if node not in res["nodes"]:
        return "deny", f"{node} is not a node of {resource}"
    peer = next(n for n in res["nodes"] if n != node)
    held = grants.get(resource)
    if held and held["node"] == peer and now - held["at"] < conf["hold"]:
        return "deny", f"{peer} was granted {resource} {now - held['at']:.0f} s ago"
    if not reach.get(node):
        return "deny", f"the master's probe does not reach {node} itself: no verdict possible"
    if not reach.get(peer):
        return "grant", f"the master does not reach {peer}: dead or cut off"
    if node == res["keeper"]:
        return "grant", f"the master reaches both: a partition, and {node} is the keeper"
    return "deny", f"the master reaches both: a partition, and {res['keeper']} keeps writing"


def probe(address, probes=3, timeout=1.0):
    """Whether ``address`` answers an ICMP echo within ``probes`` tries."""
    for _ in range(int(probes)):
        proc = subprocess.run(
            ["ping", "-n", "-q", "-c", "1", "-W", str(max(1, round(timeout))), address],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return True
    return False


def _reach(res, conf):
    out = {}

    def one(name, address):
        out[name] = bool(address) and probe(address, conf["probes"], conf["probe_timeout"])

    # side by side: a dead node costs its probes once, not once per node
    __salt__["mcheal_ctx.parallel"](*(lambda n=n, a=a: one(n, a) for n, a in res["nodes"].items()))
    return out


def decide(node, resource, conf):
    """The verdict for ``node``, which lost its peer on ``resource`` (its request's signature
    is the engine's to check): probes, the verdict, the grant remembered. Returns
    ``{"verdict", "reason", "reach", "seconds"}``."""
    t0 = time.monotonic()
    res = conf["resources"].get(resource) or {"nodes": {}}
    reach = _reach(res, conf) if node in res["nodes"] else {}
    with _GRANTS_LOCK:
        now = time.time()
        word, reason = verdict(node, resource, conf, reach, _GRANTS, now)
        if word == "grant":
            _GRANTS[resource] = {"node": node, "at": now}
    log.warning("mcstore_arbiter: %s asks for %s: %s (%s)", node, resource, word, reason)
    return {
        "verdict": word,
        "reason": reason,
        "reach": reach,
        "seconds": round(time.monotonic() - t0, 3),
    }
