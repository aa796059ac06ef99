# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the audit.

Every decision is an event ``mailcluster/failover/<node>/<what>`` on the master bus
(``salt-run state.event 'mailcluster/failover/*'``), appended to
``<cachedir>/mailcluster_failover/audit.jsonl`` as well: ``started``, ``done``, ``failback``,
``refused``, ``dns_promoted``, ``dns_restored`` (docs/selfheal.md, "Audit events"). Each
carries the run's :py:func:`base`: ``trigger``, ``tag`` and ``sender`` of the event that caused
it, the ``claim`` it made.
"""

import contextlib
import json
import logging
import os
import time

import salt.utils.event
import salt.utils.files

log = logging.getLogger(__name__)

__virtualname__ = "mcheal_audit"

AUDIT_PREFIX = "mailcluster/failover"


def __virtual__():
    return __virtualname__


def _fire(node, what, payload):
    data = dict(payload, node=node, event=what, time=time.time())
    tag = f"{AUDIT_PREFIX}/{node}/{what}"
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as ev:
        ev.fire_event(data, tag)
    # the same record in <cachedir>/mailcluster_failover/audit.jsonl, for a later look
    with contextlib.suppress(OSError):
        line = json.dumps({"tag": tag, **data}, default=str, sort_keys=True)
        path = os.path.join(__salt__["mcheal_store.workdir"](), "audit.jsonl")
        with salt.utils.files.fopen(path, "a") as fh:
            fh.write(line + "\n")
    log.info("%s: %s", tag, json.dumps(payload, default=str)[:500])
    return tag


def fire(node, what, payload):
    """Building block of mailcluster_failover: fire the audit event
    ``mailcluster/failover/<node>/<what>`` on the master bus and log it to audit.jsonl."""
    return _fire(node, what, payload)


def base(trigger, tag, data, claim):
    """Building block of mailcluster_failover: what every audit event of a run carries."""
    data = data or {}
    return {
        "trigger": trigger,
        "tag": tag,
        "sender": data.get("id"),
        "claim": claim,
    }


def refuse(node, base, reason, action=None, witnesses=None, fire=True, result="refused"):
    """Building block of mailcluster_failover: fire the ``refused`` audit event (unless
    ``fire`` is false) and return the run's result."""
    if fire:
        extra = {k: v for k, v in (("action", action), ("witnesses", witnesses)) if v is not None}
        _fire(node, "refused", dict(base, reason=reason, **extra))
    out = {"node": node, "result": result, "reason": reason}
    if witnesses is not None:
        out["witnesses"] = witnesses
    return out
