# ruff: noqa: F821  (Salt injects __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the master
arbitrates a partition of the heartbeat pair.

A partition is a mail node that answers the master while heartbeat on its peer calls it dead:
both nodes are alive, the link between them is cut, and heartbeat on each side has taken the
other's service IP, so the network has each address twice. The master settles it:

- :py:func:`arbitrate`: one node of the pair (``partition_keeper``, default the first in
  pillar order) keeps serving; on the other, grain ``mailcluster_ha_standby`` is set (so a
  highstate keeps its heartbeat stopped) and heartbeat is stopped, which releases every
  address it held. The keeper's heartbeat already holds both addresses; ``_ensure_ip`` of the
  runner checks. Each address is then on one node only, and DNS needs no change (both
  addresses are served).
- :py:func:`heal`: from the periodic reconcile, while a node stands by: once the keeper
  reaches it again (``partition_heal_checks`` pings in a row), the grain goes and heartbeat
  starts on it. It joins as a fresh node, not as the other half of a partition (which makes
  heartbeat 3 restart both sides and leaves neither address anywhere for 10-15 s), and
  ``auto_failback`` hands its address back from the keeper.
"""

import logging
import time

log = logging.getLogger(__name__)

__virtualname__ = "mcheal_partition"

#: grain set on the node that stands by while the pair is partitioned (salt/ha/service)
STANDBY_GRAIN = "mailcluster_ha_standby"


def __virtual__():
    return __virtualname__


def _call(*args, **kwargs):
    return __salt__["mcheal_ctx.call"](*args, **kwargs)


def suspected(witnesses):
    """Building block of mailcluster_failover: a partition, i.e. the master reached the node
    that heartbeat on its peer calls dead."""
    master = (witnesses or {}).get("master") or {}
    peer = (witnesses or {}).get("peer") or {}
    return bool(master.get("answered")) and "dead" in (peer.get("status") or {}).values()


def standing_by():
    """Building block of mailcluster_failover: ``{node: record}`` of the nodes that stand by
    after an arbitration (state file)."""
    state = __salt__["mcheal_store.load"]()
    return {
        n: rec["standby"]
        for n, rec in state.items()
        if isinstance(rec, dict) and rec.get("standby")
    }


def keeper(ctx, pair):
    """Building block of mailcluster_failover: the node that keeps serving both addresses:
    pillar ``partition_keeper`` if it is one of the pair, else the first of the pair in sorted
    order (the same answer on every run)."""
    wanted = ctx.settings.get("partition_keeper")
    return wanted if wanted in pair else sorted(pair)[0]


def arbitrate(ctx, node, base, witnesses):
    """
    Building block of mailcluster_failover: settle a partition that ``node``'s loss report
    revealed. Returns the run's report (``result``: ``arbitrated``, ``noop`` or ``refused``).
    """
    refuse = __salt__["mcheal_audit.refuse"]
    peers = ctx.peers(node)
    if len(peers) != 1:
        return refuse(node, base, f"partition of {node}: no single heartbeat peer", "arbitrate")
    pair = sorted([node, peers[0]])
    # both nodes' beacons report the other: one arbitration per pair at a time
    with __salt__["mcheal_store.lock"]("_partition", ctx.settings["lock_timeout"]) as locked:
        if not locked:
            return refuse(node, base, "another run holds the partition lock", "arbitrate")
        return _arbitrate_pair(ctx, node, base, witnesses, pair)


def _arbitrate_pair(ctx, node, base, witnesses, pair):
    refuse, fire = __salt__["mcheal_audit.refuse"], __salt__["mcheal_audit.fire"]
    standby = next(n for n in pair if n != keeper(ctx, pair))
    already = standing_by()
    if standby in already:
        return {"node": node, "result": "noop", "reason": f"{standby} stands by already"}
    if not ctx.settings.get("enabled", True):
        reason = f"auto-remediation disabled; would stop heartbeat on {standby} (partition)"
        return refuse(node, base, reason, "arbitrate", witnesses)
    # A cut shorter than the verification is over by now, and heartbeat has merged the pair
    # itself (it restarts both sides; auto_failback then puts each address on its owner).
    # Stopping heartbeat on the standby in the middle of that merge left, in the lab, no
    # address on either node for 15-30 s, or both on the standby.
    if _link_back(ctx, keeper(ctx, pair), standby, checks=1):
        reason = "the link is back already: heartbeat's own merge settles the pair"
        settle = _settle(ctx, pair)
        fire(standby, "partition-over", {"witnesses": witnesses, "reason": reason, **settle})
        return {"node": node, "result": "noop", "reason": reason, **settle}
    t0 = time.time()
    steps = {}
    answered, ret, ok = _call(standby, "grains.setval", [STANDBY_GRAIN, "partition"], timeout=5)
    steps["grain"] = ret if answered else "no answer"
    # recorded before the stop: whatever the stop does, heal() clears the grain and starts
    # heartbeat once the link is back (a stop that outlived its timeout left, in the lab,
    # heartbeat stopped and the grain set with no record, and the node stood by for good)
    record = {"since": t0, "keeper": keeper(ctx, pair), "reported": node}
    __salt__["mcheal_store.update"](standby, standby=record)
    # heartbeat cut from its peer took 13-18 s to stop in the lab
    answered, ret, ok = _call(standby, "service.stop", [ctx.mover], timeout=60)
    steps["stop_heartbeat"] = ret if answered else "no answer"
    if not (answered and ok and ret is True):
        return refuse(node, base, f"could not stop heartbeat on {standby}: {ret}", "arbitrate")
    payload = {
        "keeper": record["keeper"],
        "standby": standby,
        "witnesses": witnesses,
        "steps": steps,
        "timing": dict(base.get("timing") or {}, arbitrate=round(time.time() - t0, 3)),
    }
    fire(standby, "partition", payload)
    log.warning("mailcluster_failover: pair partitioned; %s keeps both addresses", record["keeper"])
    return {"node": node, "result": "arbitrated", **payload}


def _resources(pair):
    """``{node: heartbeat's resource status}`` of each node of ``pair`` ("unknown" when the
    node or heartbeat did not answer)."""
    out = {}

    def ask(n):
        answered, ret, ok = _call(n, "heartbeat.resource_status", timeout=5)
        out[n] = ret if answered and ok and isinstance(ret, str) else "unknown"

    # side by side: a node that does not answer costs its 5 s once, not once per node
    __salt__["mcheal_ctx.parallel"](*(lambda n=n: ask(n) for n in pair))
    return out


def _settle(ctx, pair):
    """
    After heartbeat merged the pair by itself: wait up to ``partition_settle_timeout`` for
    both nodes to leave resource ``transition``. A node still in it then is stuck (in the
    lab, heartbeat 3 after both sides restarted at once logged ``HB_R_BOTHSTARTING`` and
    never took its own address, which stayed on no node): its heartbeat is killed, and
    systemd starts it again 2 s later (the ha role's ``Restart=``), a fresh join. Returns
    ``{"resources": {...}, "killed": [...]}``.
    """
    deadline = time.monotonic() + float(ctx.settings.get("partition_settle_timeout") or 60)
    while True:
        status = _resources(pair)
        # "unknown": heartbeat restarting there (cl_status cannot sign on yet); wait on
        if not {"transition", "unknown"} & set(status.values()):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(2)
    stuck = sorted(n for n, rsc in status.items() if rsc == "transition")
    killed = []
    for n in stuck:
        cmd = f"systemctl kill --signal=KILL {ctx.mover}"
        answered, ret, ok = _call(n, "cmd.run_all", [cmd], timeout=20)
        if answered and ok and isinstance(ret, dict) and ret.get("retcode") == 0:
            killed.append(n)
        else:
            log.warning("mailcluster_failover: could not kill a stuck heartbeat on %s: %s", n, ret)
    if killed:
        log.warning("mailcluster_failover: heartbeat stuck in transition on %s: killed", killed)
    return {"resources": status, "killed": killed}


def _link_back(ctx, keeper_node, standby, checks=None):
    """The keeper reaches the standby node on its node address (heartbeat's path), ``checks``
    pings in a row (default ``partition_heal_checks``)."""
    ip = (ctx.nodes.get(standby) or {}).get("ip")
    checks = int(checks or ctx.settings.get("partition_heal_checks") or 2)
    for _ in range(checks):
        answered, ret, ok = _call(
            keeper_node,
            "network.ping",
            [ip],
            timeout=4,
            kwarg={"return_boolean": True, "timeout": 1},
        )
        if not (answered and ok and ret is True):
            return False
    return True


def heal(ctx):
    """
    Building block of mailcluster_failover: for each node standing by, start heartbeat again
    once the keeper reaches it. Returns the reports of what it did (empty: nothing).
    """
    out = []
    for standby, record in sorted(standing_by().items()):
        if not _link_back(ctx, record.get("keeper"), standby):
            continue
        steps = {}
        # the denied side of a partitioned DRBD pair rebooted and found no peer at its boot
        revived = __salt__["mcheal_revive.store"](ctx, standby)
        if revived is not None:
            steps["store"] = revived
            if not revived["ok"]:
                out.append({"node": standby, "result": "refused", "reason": f"store: {revived}"})
                continue
        answered, ret, _ = _call(standby, "grains.delkey", [STANDBY_GRAIN], timeout=5)
        steps["grain"] = ret if answered else "no answer"
        answered, ret, ok = _call(standby, "service.start", [ctx.mover], timeout=30)
        steps["start_heartbeat"] = ret if answered else "no answer"
        if not (answered and ok and ret is True):
            out.append({"node": standby, "result": "refused", "reason": f"heartbeat: {ret}"})
            continue
        __salt__["mcheal_store.update"](standby, standby=None)
        partitioned_s = round(time.time() - record["since"], 1)
        # a cut that ended during the arbitration has met heartbeat's merge on the keeper
        pair = sorted({record.get("keeper"), standby} - {None})
        payload = {
            "keeper": record.get("keeper"),
            "steps": steps,
            "partitioned_s": partitioned_s,
            **_settle(ctx, pair),
        }
        __salt__["mcheal_audit.fire"](standby, "partition-healed", payload)
        out.append({"node": standby, "result": "healed", **payload})
    return out
