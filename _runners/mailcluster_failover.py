# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
Self-healing of the mail pair, run on the master: verify a node loss with two independent
witnesses, re-point DNS through TSIG-signed dynamic updates, and undo it when the node is back.

Triggers (``reactor/``, ``reactor/master.d/selfheal.conf``) only name a node to look at; what
happens is decided here from the real state, never from the event's word:

- :py:func:`handle`: entry point of the reactions (``salt/beacon/*/mailcluster_ha/*``,
  ``salt/presence/change``); ``tag`` and ``data`` are the event's.
- :py:func:`reconcile`: every mail node, from the master engine (reactor/engines) and after a master
  restart (a node that died while the master was down is failed over then).
- :py:func:`failover` / :py:func:`failback`: the same, for one node, by hand or from
  ``orch.failover`` / ``orch.failback``.
- :py:func:`restore_dns_primary`: give the DNS back to the pillar primary now.
- :py:func:`touch_minions`: what the minion watchdog waits for (the master engine's thread).
- :py:func:`verify`, :py:func:`status`: read-only.

The route of an event reads top-down in this file: :py:func:`handle` names the nodes,
``_evaluate`` locks one and reads DNS, the witnesses verify (loss or health), ``_act`` changes
DNS under the DNS lock, and every decision is audited. The building blocks are runner modules
of their own, reached through ``__salt__`` (the runner loader itself):

- ``mcheal_ctx``: pillar, settings, the run's context (nodes, DNS servers, TSIG), minion calls;
- ``mcheal_store``: node and DNS locks, the state file, hold-down;
- ``mcheal_witness``: the witnesses of a loss, a returning node's health;
- ``mcheal_dns``: the roles' desired records, AXFR, signed UPDATEs, serial waits;
- ``mcheal_primary``: the DNS primary's grain, a secondary's promotion, the restore;
- ``mcheal_partition``: the master's arbitration of a partitioned pair, and its end;
- ``mcheal_audit``: the ``mailcluster/failover/<node>/<what>`` events.

A node is declared lost only when both witnesses agree: (1) the master gets no answer to
``test.ping`` within ``verify_timeout``; (2) heartbeat on the node's peer says ``dead`` (polled
for up to ``witness_wait``). A forged event about a live node therefore changes nothing and
fires ``mailcluster/failover/<node>/refused`` with the reason. A node counts as failed over
when its service IP is in no A record of any mail domain (the DNS is the truth).

Audit events, for ``salt-run state.event 'mailcluster/failover/*'``:
``mailcluster/failover/<node>/started`` (``action`` failover or failback),
``.../done`` (failover made: records, serials, timings), ``.../failback`` (records restored),
``.../refused`` (``reason``, ``witnesses``, the triggering ``tag`` and ``sender``).

Safety: one run per node at a time (``flock`` on ``<cachedir>/mailcluster_failover/<node>.lock``,
shared by the reactor's threads, the engine and ``salt-run``); ``hold_down``
seconds between two DNS changes of a node; ``enabled: false`` keeps the audits and changes
nothing. Settings: pillar ``mailcluster:selfheal`` over ``salt/selfheal/parameters/defaults.yaml``
(docs/selfheal.md).
"""

import contextlib
import json
import logging
import time

import salt.client

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_failover"

LOST_WORDS = {"dead", "lost", "down", "connecting", "standalone", "wfconnection", "unknown"}
BACK_WORDS = {"active", "up", "connected", "back", "new"}


def __virtual__():
    # the building blocks refuse to load without dnspython, and this runner without them
    for block in ("mcheal_ctx.context", "mcheal_dns.apply"):
        if block not in __salt__:
            return (False, f"{block} is not available (is dnspython installed?)")
    return __virtualname__


def _call(*args, **kwargs):
    return __salt__["mcheal_ctx.call"](*args, **kwargs)


def _context(minion=None, fresh=False):
    return __salt__["mcheal_ctx.context"](__salt__["mcheal_ctx.compile_pillar"](minion, fresh))


# --------------------------------------------------------------------------- entry points
def handle(tag=None, data=None, **kwargs):
    """
    Entry point of the reactions: look at every node the event names and act on the real
    state (the event's own claim is recorded, never trusted).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.handle tag=salt/presence/change data='{"lost": ["mx1"]}'
    """
    if isinstance(data, str):
        data = json.loads(data)
    trigger = "presence" if str(tag or "").startswith("salt/presence") else "beacon"
    if str(tag or "").startswith("salt/beacon/"):
        trigger = "beacon"
    results = []
    named = _from_event(tag, data)
    for node, claim in named:
        if claim is None:
            continue
        results.append(_evaluate(node, trigger=trigger, claim=claim, tag=tag, data=data))
    if trigger == "presence":
        # a node (re)connecting can now witness for its peer: after a master restart this
        # fails over a peer that died while the master was down, without waiting for the
        # engine. Quiet: nothing is fired when there is nothing to do.
        back = {n for n, c in named if c == "back"}
        ctx = _context()
        if ctx.acting and ctx.acting["replaces"] in back:
            # the DNS primary a secondary stood in for is back
            restored = __salt__["mcheal_primary.restore"](ctx)
            if restored:
                results.append(restored)
        for node in sorted({p for n in back if n in ctx.mail_nodes for p in ctx.peers(n)} - back):
            results.append(_evaluate(node, trigger="reconcile", quiet=True))
    return results


def failover(node, **kwargs):
    """
    Fail ``node`` over by hand (still verified by both witnesses).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.failover mx1
    """
    return _evaluate(node, trigger="manual", claim="lost", want="failover")


def failback(node, **kwargs):
    """
    Restore ``node``'s DNS records when it is healthy again.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.failback mx1
    """
    return _evaluate(node, trigger="manual", claim="back", want="failback")


# --------------------------------------------------------------------------- the route
def _claim(state_word):
    word = str(state_word or "").strip().lower()
    if word in LOST_WORDS:
        return "lost"
    if word in BACK_WORDS:
        return "back"
    return None


def _from_event(tag, data):
    """``[(node, claim)]`` named by an event (beacon or presence); the claim is only a hint."""
    data = data or {}
    tag = tag or ""
    if tag.startswith("salt/presence/change"):
        return [(n, "lost") for n in data.get("lost") or []] + [
            (n, "back") for n in data.get("new") or []
        ]
    payload = data.get("data") if isinstance(data.get("data"), dict) else data
    out = []
    node = payload.get("peer") or payload.get("node_name") or payload.get("target")
    word = payload.get("new") or payload.get("status") or payload.get("state")
    if node:
        out.append((str(node), _claim(word)))
    for item in payload.get("peers") or []:
        if isinstance(item, dict) and item.get("name"):
            out.append((str(item["name"]), _claim(item.get("new") or item.get("status"))))
    return out


def _evaluate(
    node, trigger="manual", claim=None, tag=None, data=None, want=None, quiet=False, pinged=False
):
    """
    Look at ``node`` and do what its real state calls for. ``want`` limits the action
    (``failover``/``failback``); ``claim`` is what the trigger said (only for the audit);
    ``pinged``: the reconcile's own ping found the node silent already (no second one).
    """
    t_start = time.time()
    base = __salt__["mcheal_audit.base"](trigger, tag, data, claim)
    refuse = __salt__["mcheal_audit.refuse"]
    timing = base["timing"] = {}
    ctx = _context()
    timing["pillar"] = round(time.time() - t_start, 3)
    if node not in ctx.mail_nodes:
        reason = f"{node} is not a mail node in pillar"
        return refuse(node, base, reason, fire=not quiet and trigger in ("beacon", "manual"))

    with __salt__["mcheal_store.lock"](node, ctx.settings["lock_timeout"]) as locked:
        if not locked:
            return refuse(node, base, f"another run holds the lock of {node}")

        t0 = time.time()
        # unreadable DNS: the last recorded set decides what to look at; _act refuses to change
        is_out = node in __salt__["mcheal_dns.current_withdrawn"](ctx)[0]
        timing["dns_read"] = round(time.time() - t0, 3)

        if not is_out and want != "failback":
            if claim == "back" and trigger != "manual":
                return {"node": node, "result": "noop", "reason": f"{node} is in DNS already"}
            if trigger == "reconcile" and not pinged:
                answered, ret, _ = _call(node, "test.ping", timeout=ctx.settings["verify_timeout"])
                if answered and ret is True:
                    return {"node": node, "result": "noop", "reason": f"{node} answers"}
            t0 = time.time()
            mode = "presence" if trigger == "presence" and claim == "lost" else trigger
            lost, reason, witnesses = __salt__["mcheal_witness.verify_lost"](ctx, node, mode=mode)
            timing["verify"] = round(time.time() - t0, 3)
            if not lost and __salt__["mcheal_partition.suspected"](witnesses):
                return __salt__["mcheal_partition.arbitrate"](ctx, node, base, witnesses)
            if not lost:
                fire = not quiet or claim == "lost"
                return refuse(node, base, reason, "failover", witnesses, fire=fire)
            return _act(ctx, node, "failover", base, witnesses, t_start)
        if is_out and want != "failover":
            if claim == "lost" and trigger != "manual":
                return {"node": node, "result": "noop", "reason": f"{node} is failed over already"}
            held = __salt__["mcheal_store.hold_down"](ctx, node)
            if held:
                return refuse(node, base, held, "failback", fire=not quiet or claim == "back")
            # a node that answers but is still starting is looked at for up to health_wait
            # (a minion that has just connected may not take jobs yet: same for presence "new")
            just_back = trigger in ("presence", "beacon") and claim == "back"
            ok, reason, health = __salt__["mcheal_witness.wait_healthy"](ctx, node, just_back)
            if not ok:
                fire = not quiet or claim == "back"
                return refuse(node, base, reason, "failback", health, fire=fire)
            # when the runner saw it healthy: the failback's DNS time is measured from here
            health["healthy_at"] = time.time()
            return _act(ctx, node, "failback", base, health, t_start)
        state = "failed over" if is_out else "in service"
        return {"node": node, "result": "noop", "reason": f"{node} is {state} already"}


def _act(ctx, node, action, base, witnesses, t_start):
    """Change DNS for ``node`` (verified): under the DNS lock, re-read the records (a lost DNS
    primary gets a stand-in), send the updates, record the change; then the IP and the grain."""
    refuse, fire = __salt__["mcheal_audit.refuse"], __salt__["mcheal_audit.fire"]
    held = __salt__["mcheal_store.hold_down"](ctx, node)
    if held:
        return refuse(node, base, held, action, witnesses)
    if not ctx.settings.get("enabled", True):
        reason = f"auto-remediation disabled (mailcluster:selfheal:enabled); would {action}"
        return refuse(node, base, reason, action, witnesses)
    with __salt__["mcheal_store.dns_lock"](ctx.settings["lock_timeout"]) as locked:
        if not locked:
            return refuse(node, base, "another run holds the DNS lock", action, witnesses)
        # read again under the lock: the other node's run may have changed the records
        ctx.follow_state()
        withdrawn, actual, dns_errors = __salt__["mcheal_dns.current_withdrawn"](ctx)
        if ctx.dns_primary and (dns_errors or not actual):
            # the primary is gone too (a whole data centre): a secondary takes its place
            promoted, why = __salt__["mcheal_primary.promote"](ctx, withdrawn, base)
            if promoted:
                withdrawn, actual, dns_errors = __salt__["mcheal_dns.current_withdrawn"](ctx)
            if not promoted or dns_errors or not actual:
                reason = f"DNS primary {ctx.dns_primary} unreadable: {dns_errors}; {why}"
                return refuse(node, base, reason, action, witnesses)
        withdrawn = withdrawn | {node} if action == "failover" else withdrawn - {node}
        fire(node, "started", dict(base, action=action, witnesses=witnesses))
        report = {"skipped": "no dns_primary in pillar"}
        try:
            if ctx.dns_primary:
                report = __salt__["mcheal_dns.apply"](ctx, withdrawn, actual)
        except Exception as exc:  # pylint: disable=broad-except
            reason = f"DNS update failed: {type(exc).__name__}: {exc}"
            return refuse(node, base, reason, action, witnesses, result="failed")
        __salt__["mcheal_store.update"](node, changed=time.time(), action=action)
        __salt__["mcheal_store.record_withdrawn"](withdrawn)
    payload = dict(
        base,
        action=action,
        dns=report,
        witnesses=witnesses,
        seconds=round(time.time() - t_start, 3),
    )
    if action == "failover":
        payload["ip"] = _ensure_ip(ctx, node)
        fire(node, "done", payload)
    else:
        fire(node, "failback", payload)
    payload["grain"] = __salt__["mcheal_primary.set_grain"](ctx, withdrawn)
    return {"node": node, "result": action, **payload}


def _ensure_ip(ctx, node):
    """The lost node's service IP is up on a survivor; ask heartbeat to take it if not."""
    if not ctx.settings.get("repair_ip"):
        return {"skipped": "repair_ip is false"}
    ip = ctx.service_ip(node)
    out = {"ip": ip}
    deadline = time.monotonic() + float(ctx.settings.get("ip_grace") or 0)
    while True:
        for peer in ctx.peers(node):
            answered, ret, ok = _call(peer, "network.ip_addrs", [], timeout=2.0)
            if answered and ok and isinstance(ret, list) and ip in ret:
                out["holder"] = peer
                return out
        if time.monotonic() >= deadline:
            break
        time.sleep(0.3)
    for peer in ctx.peers(node):
        answered, ret, ok = _call(peer, "heartbeat.takeover", ["foreign"], timeout=10.0)
        out.setdefault("takeover", {})[peer] = ret if answered else "no answer"
        if answered and ok:
            time.sleep(2.0)
            answered, ret, ok = _call(peer, "network.ip_addrs", [], timeout=2.0)
            if answered and ok and isinstance(ret, list) and ip in ret:
                out["holder"] = peer
                out["repaired"] = True
                return out
    out["holder"] = None
    return out


# --------------------------------------------------------------------------- periodic
def reconcile(**kwargs):
    """
    Look at every mail node and converge DNS to what is real (from the master engine,
    and after a master restart). Quiet when nothing is to be done.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.reconcile
    """
    # fresh pillar: a cached one may still name a zone that is gone (a removed domain whose
    # zone BIND still serves), whose records the failovers no longer touch
    ctx = _context(fresh=True)
    # a node standing by since a partition of the pair gets heartbeat back once the link is
    out = list(__salt__["mcheal_partition.heal"](ctx))
    if ctx.acting and ctx.settings.get("enabled", True):
        restored = __salt__["mcheal_primary.restore"](ctx)
        if restored:
            out.append(restored)
    # cheap first pass without locks: a node in DNS that answers needs nothing
    withdrawn = __salt__["mcheal_dns.current_withdrawn"](ctx)[0]
    answers = {}

    def ping(node):
        answered, ret, _ = _call(node, "test.ping", timeout=ctx.settings["verify_timeout"])
        answers[node] = bool(answered and ret is True)

    __salt__["mcheal_ctx.parallel"](
        *(lambda n=n: ping(n) for n in ctx.mail_nodes if n not in withdrawn)
    )
    for node in ctx.mail_nodes:
        if node not in withdrawn and answers.get(node):
            out.append({"node": node, "result": "noop", "reason": f"{node} answers"})
            continue
        out.append(_evaluate(node, trigger="reconcile", quiet=True, pinged=node in answers))
    if ctx.dns_primary and ctx.settings.get("enabled", True):
        report = _repair_drift(ctx, {n for n, ok in answers.items() if ok})
        if report:
            out.append({"node": None, "result": "repaired", "dns": report})
    return out


def _repair_drift(ctx, answered):
    """Records drifted from what the current withdrawn set calls for (a hand edit, a
    highstate without the grain): put them back, without touching the withdrawn set.
    Skipped while a node's run holds the DNS lock (its half-applied update would read as
    drift; the next pass looks again), and whenever it would keep in DNS a mail node that did
    not answer this pass's ping (``answered``): a repair never puts a silent node back."""
    with __salt__["mcheal_store.dns_lock"](0) as locked:
        if not locked:
            return None
        ctx.follow_state()
        withdrawn, actual, errors = __salt__["mcheal_dns.current_withdrawn"](ctx)
        if errors or not actual:
            return None
        silent = sorted(set(ctx.mail_nodes) - set(withdrawn) - set(answered))
        if silent:
            log.info("mailcluster_failover: no drift repair while %s in DNS is silent", silent)
            return None
        try:
            report = __salt__["mcheal_dns.apply"](ctx, withdrawn, actual)
        except Exception as exc:  # pylint: disable=broad-except
            log.warning("mailcluster_failover: drift repair failed: %s", exc)
            return None
    if not report["changed"]:
        return None
    log.warning("mailcluster_failover: repaired DNS drift: %s", report)
    return report


def restore_dns_primary(**kwargs):
    """
    Give the DNS back to the pillar primary when a secondary stands in for it (the engine
    does this by itself once the primary answers; this skips the hold-down of a failed try).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.restore_dns_primary
    """
    ctx = _context(fresh=True)
    if not ctx.acting:
        return {"result": "noop", "reason": "no DNS secondary stands in for the primary"}
    return __salt__["mcheal_primary.restore"](ctx, force=True) or {
        "result": "noop",
        "reason": f"{ctx.acting['replaces']} or its BIND does not answer yet",
    }


def reconcile_interval(default=10.0):
    """
    Seconds the master engine sleeps between two reconciles: pillar
    ``mailcluster:selfheal:reconcile_interval``, else the engine's own ``interval``
    (``default``). Each reconcile pings every mail node and has a silent one verified (a
    second ping, the peer's witness): on slow nodes (the lab's TCG guests) a longer pause
    keeps those jobs from queueing faster than the nodes run them.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.reconcile_interval
    """
    pillar = __salt__["mcheal_ctx.compile_pillar"]()
    return float(__salt__["mcheal_ctx.settings"](pillar).get("reconcile_interval") or default)


def touch_minions():
    """
    Touch the minion watchdog's heard file on every cluster node: one publication, nothing
    waited for. The watchdog (salt/selfheal/watchdog) restarts a minion that stops getting
    these while the master answers: a minion left deaf by a master restart. The master engine
    calls it again after the ``next_in`` seconds it returns (``watchdog:touch_interval``).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.touch_minions
    """
    pillar = __salt__["mcheal_ctx.compile_pillar"]()
    watchdog = __salt__["mcheal_ctx.settings"](pillar).get("watchdog") or {}
    next_in = float(watchdog.get("touch_interval") or 30)
    if not watchdog.get("enabled", True):
        return {"touched": [], "reason": "watchdog disabled in pillar", "next_in": next_in}
    nodes = sorted((pillar.get("mailcluster") or {}).get("nodes") or {})
    if not nodes:
        return {"touched": [], "reason": "no mailcluster:nodes in pillar", "next_in": next_in}
    client = salt.client.LocalClient(mopts=__opts__)
    try:
        jid = client.cmd_async(nodes, "file.touch", [watchdog["heard_file"]], tgt_type="list")
    finally:
        with contextlib.suppress(Exception):
            client.destroy()
    return {"touched": nodes, "jid": jid, "next_in": next_in}


# --------------------------------------------------------------------------- read-only
def verify(node):
    """
    Run both witnesses for ``node`` and say whether it would be declared lost; no change.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.verify mx1
    """
    ctx = _context(node)
    lost, reason, witnesses = __salt__["mcheal_witness.verify_lost"](ctx, node)
    return {"node": node, "lost": lost, "reason": reason, "witnesses": witnesses}


def status():
    """
    What DNS says now (failed-over nodes), the last change per node and the settings.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.status
    """
    ctx = _context()
    zones_list = sorted(__salt__["mcheal_dns.desired"](ctx, set()))
    actual, errors = __salt__["mcheal_dns.actual"](ctx, zones_list) if ctx.dns_primary else ({}, {})
    withdrawn_in = __salt__["mcheal_dns.withdrawn_in"]
    return {
        "withdrawn": sorted(withdrawn_in(ctx, actual)) if actual and not errors else None,
        "serials": {z: s for z, (s, _) in actual.items()},
        "dns_errors": errors,
        "dns_primary": ctx.dns_primary_id,
        "dns_acting": ctx.acting,
        "state": __salt__["mcheal_store.load"](),
        "settings": {k: v for k, v in ctx.settings.items() if k != "beacon"},
    }
