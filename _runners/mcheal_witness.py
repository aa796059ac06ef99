# ruff: noqa: F821  (Salt injects __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the witnesses.
Each function says what it saw and why; only wait_healthy starts what is missing.

- :py:func:`verify_lost`: a mail node is lost only when both agree: (1) the master gets no
  answer to ``test.ping``; (2) heartbeat on the node's peer says ``dead`` (one
  ``heartbeat.wait_node_status`` job on the peer, for up to ``witness_wait``).
- :py:func:`healthy`, :py:func:`wait_healthy`: a returning node answers, its
  ``health_services`` are active and its peer's heartbeat sees it ``active`` (what is
  missing, a store that did not come up at boot or heartbeat alone, is started meanwhile).
- :py:func:`primary_lost`: the DNS primary is gone for the master (``test.ping``) and for a DNS
  secondary (no SOA from its BIND).
"""

import functools
import threading
import time

__virtualname__ = "mcheal_witness"


def __virtual__():
    return __virtualname__


def _call(*args, **kwargs):
    return __salt__["mcheal_ctx.call"](*args, **kwargs)


# --------------------------------------------------------------------------- a mail node lost
def _master_witness(ctx, node, result, stop, timeout=None):
    t0 = time.monotonic()
    timeout = timeout or ctx.settings["verify_timeout"]
    answered, ret, _ = _call(node, "test.ping", timeout=timeout)
    result["master"] = {
        "answered": bool(answered and ret is True),
        "seconds": round(time.monotonic() - t0, 3),
    }
    if answered and ret is True:
        stop.set()


def _ask_peer(peer, node, deadline, stop, fun):
    """One look at ``node`` through heartbeat on ``peer``: ``(status text, fun to use next)``.
    ``heartbeat.wait_node_status`` waits on the peer until ``dead`` or ``deadline``; the
    ``stop`` event (None: none) abandons the wait."""
    left = max(0.3, deadline - time.monotonic())
    kwarg = (
        {"status": "dead", "timeout": round(left, 3)} if fun.startswith("heartbeat.wait") else None
    )
    answered, ret, ok = _call(peer, fun, [node], timeout=left + 2.0, kwarg=kwarg, cancel=stop)
    if not answered:
        return "no answer", fun
    if not ok or not isinstance(ret, str):
        # a minion not synced since wait_node_status came: look from here from now on
        return f"error: {ret}", "heartbeat.node_status" if "is not available" in str(ret) else fun
    return ret, fun


def _peer_witness(ctx, node, result, stop):
    """
    Heartbeat on every peer, until one says ``node`` is ``dead`` (or ``stop``: the master
    reached the node, or ``witness_wait`` is over). The wait runs on the peer, in one job
    (``heartbeat.wait_node_status``): polling ``node_status`` from here cost a minion job
    process per look, on the node that is taking over the lost IP at that moment.
    """
    t0 = time.monotonic()
    deadline = t0 + float(ctx.settings["witness_wait"])
    seen = {}
    peers = ctx.peers(node)
    fun = "heartbeat.wait_node_status"
    while peers and not stop.is_set():
        for peer in peers:
            seen[peer], fun = _ask_peer(peer, node, deadline, stop, fun)
            if seen[peer] == "dead":
                break
        if "dead" in seen.values() or time.monotonic() >= deadline:
            break
        # no answer, an error, or the minion-side wait ended: look again shortly
        time.sleep(0.1)
    if stop.is_set() and "dead" not in seen.values():
        # the master reached the node: record what heartbeat says now, without waiting (a
        # partition shows as an answering node that its peer calls dead)
        for peer in peers:
            seen[peer], _ = _ask_peer(peer, node, time.monotonic(), None, "heartbeat.node_status")
    result["peer"] = {
        "says_dead": "dead" in seen.values(),
        "status": dict(seen),
        "seconds": round(time.monotonic() - t0, 3),
    }


def verify_lost(ctx, node, mode=None):
    """
    Building block of mailcluster_failover: both witnesses of a mail node's loss, in
    parallel. Returns ``(lost, reason, witnesses)``. The master's ping timeout depends on what
    started the run (``mode``): ``reconcile`` (no event says the node just died:
    ``reconcile_verify_timeout``, so minions reconnecting after a master restart are not taken
    for dead), ``presence`` (the master saw the minion's connection drop:
    ``presence_verify_timeout`` only confirms it did not come back), else ``verify_timeout``.
    """
    result, stop = {}, threading.Event()
    timeout = {
        "reconcile": ctx.settings.get("reconcile_verify_timeout"),
        "presence": ctx.settings.get("presence_verify_timeout"),
    }.get(mode)
    __salt__["mcheal_ctx.parallel"](
        functools.partial(_master_witness, ctx, node, result, stop, timeout),
        functools.partial(_peer_witness, ctx, node, result, stop),
    )
    master = result.get("master") or {"answered": None}
    peer = result.get("peer") or {"says_dead": False, "status": {}}
    if master.get("answered"):
        return False, f"{node} answered test.ping from the master", result
    if not ctx.peers(node):
        return False, f"{node} has no heartbeat peer in pillar to witness", result
    if not peer.get("says_dead"):
        status = ", ".join(f"{p}: {s}" for p, s in sorted(peer["status"].items()))
        return (
            False,
            f"{node} does not answer the master, but its peer does not report it dead ({status})",
            result,
        )
    return True, f"{node} silent to the master and dead for heartbeat on its peer", result


# --------------------------------------------------------------------------- a node back
def healthy(ctx, node):
    """Building block of mailcluster_failover: a returning node's health, one look:
    ``(ok, reason, witnesses)``; minion answers, its services are active, the peer sees it
    active."""
    result = {}
    services = list(ctx.settings.get("health_services") or [])

    def on_node():
        t0 = time.monotonic()
        cmd = " ".join(["systemctl", "is-active", *services]) if services else "true"
        answered, ret, _ = _call(
            node,
            "cmd.run_all",
            [cmd],
            timeout=max(2.0, float(ctx.settings["verify_timeout"])),
            kwarg={"python_shell": False, "ignore_retcode": True},
        )
        ok = answered and isinstance(ret, dict) and ret.get("retcode") == 0
        states = (ret.get("stdout") or "").split() if isinstance(ret, dict) else []
        result["node"] = {
            "answered": bool(answered),
            "services": dict(zip(services, states, strict=False)),
            "ok": bool(ok),
            "seconds": round(time.monotonic() - t0, 3),
        }

    def on_peer():
        seen = {}
        for peer in ctx.peers(node):
            answered, ret, ok = _call(
                peer,
                "heartbeat.node_status",
                [node],
                timeout=max(2.0, float(ctx.settings["verify_timeout"])),
            )
            seen[peer] = ret if answered and ok else "no answer"
        result["peer"] = seen

    __salt__["mcheal_ctx.parallel"](on_node, on_peer)
    nres, pres = result.get("node") or {}, result.get("peer") or {}
    if not nres.get("answered"):
        return False, f"{node} does not answer the master", result
    if not nres.get("ok"):
        return False, f"{node}: services not all active: {nres.get('services')}", result
    if pres and not any(v == "active" for v in pres.values()):
        return False, f"heartbeat on the peer does not see {node} active: {pres}", result
    return True, f"{node} answers, services active, peer sees it active", result


def wait_healthy(ctx, node, just_back=False):
    """Building block of mailcluster_failover: :py:func:`healthy`, looked at again for up to
    ``health_wait`` s while the node answers but is still starting (heartbeat's initdead,
    services), or has ``just_back`` connected (a fresh minion may not take jobs yet), so that
    DNS follows as soon as it is healthy. Starts heartbeat when it is all that is missing
    (``restart_heartbeat``). Returns ``(ok, reason, witnesses)``."""
    ok, reason, health = healthy(ctx, node)
    deadline = time.monotonic() + float(ctx.settings.get("health_wait") or 0)
    restarted = False
    revived = None
    while not ok and ((health.get("node") or {}).get("answered") or just_back):
        if time.monotonic() >= deadline:
            break
        services = (health.get("node") or {}).get("services") or {}
        mover = ctx.mover
        if revived is None and any(v != "active" for k, v in services.items() if k != mover):
            # a store that did not come up at boot keeps every mail service down (drbd_ocfs2)
            revived = __salt__["mcheal_revive.store"](ctx, node) or {}
        if (
            ctx.settings.get("restart_heartbeat")
            and not restarted
            and services.get(mover) not in (None, "active", "activating")
            and all(v == "active" for k, v in services.items() if k != mover)
        ):
            # heartbeat 3 shuts itself down on one side when a partition heals
            # ("returning after partition"): start it again, nothing else is missing
            restarted = True
            _call(node, "service.start", [mover], timeout=15.0)
        time.sleep(float(ctx.settings.get("health_interval") or 0.3))
        ok, reason, health = healthy(ctx, node)
    if restarted:
        health["heartbeat_restarted"] = True
    if revived:
        health["store_revived"] = revived
    return ok, reason, health


# --------------------------------------------------------------------------- the DNS primary
def primary_lost(ctx, candidate):
    """
    Building block of mailcluster_failover: two witnesses that the pillar DNS primary is
    gone: the master gets no ``test.ping`` answer, and ``candidate`` (a secondary, from its own
    network position) gets no SOA from its BIND. Returns ``(lost, reason, witnesses)``.
    """
    lost_id = ctx.pillar_primary_id
    lost_ip = ctx.nodes[lost_id]["ip"]
    witnesses = {}

    def master():
        answered, ret, _ = _call(lost_id, "test.ping", timeout=ctx.settings["verify_timeout"])
        witnesses["master"] = {"answered": bool(answered and ret is True)}

    def secondary():
        answered, serial, ok = _call(
            candidate,
            "mailcluster_dns.soa_serial",
            [ctx.cluster_domain],
            kwarg={"server": lost_ip, "timeout": ctx.settings["verify_timeout"]},
            timeout=float(ctx.settings["verify_timeout"]) + 4.0,
        )
        witnesses["secondary"] = {"node": candidate, "answered": bool(answered and ok)}
        witnesses["secondary"]["soa"] = serial

    __salt__["mcheal_ctx.parallel"](master, secondary)
    serial = witnesses["secondary"]["soa"]
    if witnesses["master"]["answered"]:
        return False, f"{lost_id} answers the master (its BIND does not: not a loss)", witnesses
    if not witnesses["secondary"]["answered"]:
        return False, f"{candidate} cannot witness: {serial}", witnesses
    if serial is not None:
        return False, f"{lost_id}'s BIND answers {candidate} (serial {serial})", witnesses
    return True, f"{lost_id} silent to the master and its BIND silent to {candidate}", witnesses
