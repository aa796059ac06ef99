# ruff: noqa: F821  (Salt injects __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the DNS primary.

- :py:func:`set_grain`: grain ``mailcluster_dns_withdrawn`` on the DNS node taking the
  updates, so that a highstate of the dns role writes the records the failover wrote.
- :py:func:`promote`: the pillar DNS primary is unreadable while DNS must change; when both
  witnesses say it is lost, a secondary becomes the acting primary (grain
  ``mailcluster_dns_acting_primary``, the dns role's own states, serials above the ones it
  served) and the other secondaries follow it.
- :py:func:`restore`: the pillar primary is back: it takes the acting primary's records with
  higher serials, then the acting one becomes a secondary again.

The stand-in is recorded in the state file (``_dns_acting``), which the run's context follows.
"""

import logging
import time

log = logging.getLogger(__name__)

__virtualname__ = "mcheal_primary"

#: grain of _modules/mailcluster.py naming the DNS node that acts as the primary
ACTING_GRAIN = "mailcluster_dns_acting_primary"
WITHDRAWN_GRAIN = "mailcluster_dns_withdrawn"


def __virtual__():
    return __virtualname__


def _call(*args, **kwargs):
    return __salt__["mcheal_ctx.call"](*args, **kwargs)


def set_grain(ctx, withdrawn):
    """Building block of mailcluster_failover: the withdrawn set as a grain on the DNS node
    taking the updates (``set_grain``); None when not set, else whether it was."""
    if not ctx.settings.get("set_grain") or not ctx.dns_primary_id:
        return None
    answered, _ret, ok = _call(
        ctx.dns_primary_id,
        "grains.setval",
        [WITHDRAWN_GRAIN, sorted(withdrawn)],
        timeout=10,
    )
    return bool(answered and ok)


def _state_sls(node, sls, ctx, pillar=None):
    """``state.sls`` on ``node``: ``(ok, summary)``, the summary naming failed states."""
    kwarg = {"pillar": pillar} if pillar else None
    answered, ret, _ = _call(
        node, "state.sls", [sls], timeout=float(ctx.settings["dns_state_timeout"]), kwarg=kwarg
    )
    if not answered:
        return False, f"state.sls {sls} on {node}: no answer"
    if not isinstance(ret, dict):
        return False, f"state.sls {sls} on {node}: {str(ret)[:300]}"
    failed = sorted(
        str(v.get("__id__") or k) for k, v in ret.items() if isinstance(v, dict) and not v["result"]
    )
    changed = sum(1 for v in ret.values() if isinstance(v, dict) and v.get("changes"))
    if failed:
        return False, f"state.sls {sls} on {node} failed: {failed}"
    return True, f"state.sls {sls} on {node}: {len(ret)} states, {changed} changed"


def candidates(ctx):
    """Building block of mailcluster_failover: the DNS secondaries that may stand in, those
    outside the lost primary's data centre first."""
    lost_dc = (ctx.nodes.get(ctx.pillar_primary_id) or {}).get("dc")
    return sorted(
        ctx.dns_secondary_ids,
        key=lambda n: ((ctx.nodes[n].get("dc") == lost_dc and lost_dc is not None), n),
    )


def promote(ctx, withdrawn, base):
    """
    Building block of mailcluster_failover: the pillar DNS primary is unreadable while DNS
    must change: when both witnesses say it is lost, make a secondary the acting primary and
    point ``ctx`` at it; the other secondaries follow it. Called under the DNS lock.
    Returns ``(promoted, reason)``.
    """
    lost_id = ctx.pillar_primary_id
    if ctx.acting:
        return False, f"{ctx.acting['node']} acts as the DNS primary already"
    if not ctx.settings.get("promote_dns_secondary", True):
        return False, "promote_dns_secondary is false"
    pool = candidates(ctx)
    if not lost_id or not pool:
        return False, "no DNS secondary in pillar to stand in for the primary"
    reason, witnesses = "", {}
    for candidate in pool:
        lost, reason, witnesses = __salt__["mcheal_witness.primary_lost"](ctx, candidate)
        if lost or witnesses["master"]["answered"]:
            break
    if not lost:
        return False, f"not promoting a secondary: {reason}"
    t0 = time.time()
    zones = __salt__["mcheal_dns.zone_names"](ctx)
    floors = __salt__["mcheal_dns.served_serials"](ctx, ctx.nodes[candidate]["ip"], zones)
    fire = __salt__["mcheal_audit.fire"]
    fire(lost_id, "started", dict(base, action="dns_promote", node_acting=candidate))
    grains = {WITHDRAWN_GRAIN: sorted(withdrawn), ACTING_GRAIN: candidate}
    answered, ret, ok = _call(candidate, "grains.setvals", [grains], timeout=10.0)
    if not (answered and ok):
        return False, f"promoting {candidate}: grains.setvals failed: {ret}"
    ok, summary = _state_sls(
        candidate, "dns.secondary", ctx, pillar={"dns": {"serial_floor": floors}}
    )
    if not ok:
        _call(candidate, "grains.delkey", [ACTING_GRAIN], timeout=10.0)
        fire(lost_id, "refused", dict(base, action="dns_promote", reason=summary))
        return False, f"promoting {candidate}: {summary}"
    acting = {"node": candidate, "replaces": lost_id, "since": time.time()}
    __salt__["mcheal_store.change"](lambda state: state.__setitem__("_dns_acting", acting))
    ctx.acting = acting
    ctx.use_primary(candidate)
    followers = _follow_primary(ctx, candidate)
    fire(
        lost_id,
        "dns_promoted",
        dict(
            base,
            action="dns_promote",
            node_acting=candidate,
            witnesses=witnesses,
            serial_floor=floors,
            state=summary,
            followers=followers,
            seconds=round(time.time() - t0, 3),
        ),
    )
    return True, f"{candidate} acts as the DNS primary"


def _follow_primary(ctx, primary):
    """The other secondaries take their zones from ``primary`` (the grain names it, or its
    absence the pillar primary); ``{node: summary}``."""
    out = {}
    for node in ctx.dns_secondary_ids:
        if node == primary or node == ctx.pillar_primary_id:
            continue
        if primary == ctx.pillar_primary_id:
            answered, ret, ok = _call(node, "grains.delkey", [ACTING_GRAIN], timeout=10.0)
        else:
            answered, ret, ok = _call(node, "grains.setval", [ACTING_GRAIN, primary], timeout=10)
        if not (answered and ok):
            out[node] = f"grain not set: {ret}"
            continue
        out[node] = _state_sls(node, "dns.secondary", ctx)[1]
    return out


def restore(ctx, force=False):
    """
    Building block of mailcluster_failover: the pillar DNS primary is back (answers the
    master, its BIND answers): it takes the acting primary's records with higher serials
    (grain + ``dns.primary`` with a serial floor), then the acting one becomes a secondary
    again. Returns the run's result, or None when there is nothing to do.
    """
    if not ctx.acting:
        return None
    lost_id, acting_id = ctx.acting["replaces"], ctx.acting["node"]
    lost_ip = ctx.nodes[lost_id]["ip"]
    answered, ret, _ = _call(lost_id, "test.ping", timeout=ctx.settings["verify_timeout"])
    if not (answered and ret is True):
        return None
    zones = __salt__["mcheal_dns.zone_names"](ctx)
    if not __salt__["mcheal_dns.served_serials"](ctx, lost_ip, zones[:1]):
        return None  # its BIND is not up yet
    if not force and __salt__["mcheal_store.hold_down"](ctx, lost_id):
        return None  # a failed attempt: not again before hold_down
    base = __salt__["mcheal_audit.base"]("reconcile" if not force else "manual", None, None, "back")
    refuse = __salt__["mcheal_audit.refuse"]
    with __salt__["mcheal_store.dns_lock"](ctx.settings["lock_timeout"]) as locked:
        ctx.follow_state()
        if not locked or not ctx.acting:
            return None
        t0 = time.time()
        # an unreadable stand-in gives way all the same: the last recorded withdrawn set,
        # the serials that can be read
        withdrawn, actual, errors = __salt__["mcheal_dns.current_withdrawn"](ctx)
        if errors:
            log.warning("mailcluster_failover: %s unreadable at restore: %s", acting_id, errors)
        # every zone's serial on the stand-in (the failover's read covers the zones a
        # failover changes only: the cluster zone in layout cluster)
        floors = __salt__["mcheal_dns.served_serials"](ctx, ctx.dns_primary, zones)
        floors.update({zone: serial for zone, (serial, _) in actual.items()})
        __salt__["mcheal_audit.fire"](
            lost_id, "started", dict(base, action="dns_restore", node_acting=acting_id)
        )
        grain = [WITHDRAWN_GRAIN, sorted(withdrawn)]
        answered, ret, ok = _call(lost_id, "grains.setval", grain, timeout=10.0)
        if not (answered and ok):
            return refuse(lost_id, base, f"grains.setval failed: {ret}", "dns_restore")
        ok, summary = _state_sls(
            lost_id, "dns.primary", ctx, pillar={"dns": {"serial_floor": floors}}
        )
        ctx.use_primary(lost_id)
        have, errors = __salt__["mcheal_dns.actual"](ctx, zones)
        behind = sorted(z for z in zones if z not in have or have[z][0] <= floors.get(z, 0))
        if not ok or errors or behind or __salt__["mcheal_dns.differs"](ctx, withdrawn, have):
            ctx.use_primary(acting_id)
            __salt__["mcheal_store.update"](lost_id, changed=time.time(), action="dns_restore")
            reason = f"{lost_id} not restored ({summary}; errors {errors}; behind {behind})"
            return refuse(lost_id, base, reason, "dns_restore", result="failed")
        answered, ret, ok = _call(acting_id, "grains.delkey", [ACTING_GRAIN], timeout=10.0)
        demoted = _state_sls(acting_id, "dns.secondary", ctx)[1]
        followers = _follow_primary(ctx, lost_id)
        __salt__["mcheal_store.change"](lambda state: state.pop("_dns_acting", None))
        ctx.acting = None
        propagation = __salt__["mcheal_dns.wait_serials"](ctx, zones, time.monotonic())
    payload = dict(
        base,
        action="dns_restore",
        node_acting=acting_id,
        serial_floor=floors,
        serials={zone: serial for zone, (serial, _) in have.items()},
        state=summary,
        demoted=demoted,
        followers=followers,
        propagation=propagation,
        seconds=round(time.time() - t0, 3),
    )
    __salt__["mcheal_audit.fire"](lost_id, "dns_restored", payload)
    return {"node": lost_id, "result": "dns_restored", **payload}
