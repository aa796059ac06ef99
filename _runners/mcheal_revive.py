# ruff: noqa: F821  (Salt injects __salt__ into loader modules)
"""
Building block of :py:mod:`mailcluster_failover` (the self-healing runner): a mail node whose
store did not come up at its boot (backend drbd_ocfs2).

``mailcluster-store`` promotes and mounts only with the DRBD peer connected, and gives up
after ``storage:drbd:boot_peer_wait``: a node that booted while its peer was unreachable (the
denied side of a partition, which reboots itself; a node that came back alone) stays out,
its mail services and mover skipped by the guard. Once the master reaches it again,
:py:func:`store` starts the unit (it still promotes only with the peer connected: the peer's
newer data resyncs to it first), then the mail services, so the node's health check can pass
and DNS follow. The mover is left to its callers (heartbeat's start has its own order).
"""

__virtualname__ = "mcheal_revive"

#: the store's unit (salt/storage/boot)
STORE_UNIT = "mailcluster-store"
#: s for one start of the unit: the peer's wait, the promotion behind a resync, the mount
START_TIMEOUT = 300.0


def __virtual__():
    return __virtualname__


def _call(*args, **kwargs):
    return __salt__["mcheal_ctx.call"](*args, **kwargs)


def store(ctx, node):
    """Building block of mailcluster_failover: start the store of ``node`` and its mail
    services if the store is down. Returns
    ``None`` when there is nothing to do (not drbd_ocfs2, no answer, store up), else a report
    ``{"store": ..., "started": [...], "queue_flushed": bool}`` (``ok`` False with the
    reason when the start failed: the peer still unreachable, for one). Postfix's queue is
    flushed last: the mail it accepted while the store was down is delivered now, not after
    its backoff."""
    if ((ctx.pillar.get("storage") or {}).get("backend")) != "drbd_ocfs2":
        return None
    answered, ret, ok = _call(node, "service.status", [STORE_UNIT], timeout=10.0)
    if not answered or not ok or ret is True:
        return None
    answered, ret, ok = _call(node, "service.start", [STORE_UNIT], timeout=START_TIMEOUT)
    if not (answered and ok and ret is True):
        return {"store": ret if answered else "no answer", "ok": False, "started": []}
    started = []
    for service in ctx.settings.get("health_services") or []:
        if service == ctx.mover:
            continue
        answered, ret, ok = _call(node, "service.start", [service], timeout=60.0)
        if answered and ok and ret is True:
            started.append(service)
    # what postfix accepted while the store was down waits in its queue, deferred with a
    # backoff of minutes (the seed lab's partition: 9 messages): deliver it now
    answered, ret, ok = _call(node, "cmd.run_all", ["postqueue -f"], timeout=30.0,
                              kwarg={"python_shell": False})  # fmt: skip
    flushed = bool(answered and ok and isinstance(ret, dict) and ret.get("retcode") == 0)
    return {"store": True, "ok": True, "started": started, "queue_flushed": flushed}
