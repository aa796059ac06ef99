# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the run's
context, and the one way a run reaches a minion.

- :py:func:`compile_pillar`, :py:func:`settings`: the cluster's pillar, compiled on the
  master (cached ``pillar_cache`` seconds in one process), and the self-healing settings:
  pillar ``mailcluster:selfheal`` over ``salt/selfheal/parameters/defaults.yaml`` (read through
  file_roots).
- :py:func:`context`: a :py:class:`RunContext` (nodes, peers, the DNS node that takes the
  updates, the TSIG key, settings) for one run.
- :py:func:`call`: publish one function to one minion and wait for its return, at most a
  timeout; :py:func:`parallel`: run witnesses side by side in threads that keep the runner
  loader's context (so they reach ``__salt__``).

Runner modules share code through ``__salt__``, the runner loader itself (docs/selfheal.md).
"""

import contextlib
import contextvars
import copy
import logging
import os
import threading
import time

import salt.client
import salt.pillar
import salt.utils.dictupdate
import salt.utils.files
import salt.utils.minions
import salt.utils.yaml

log = logging.getLogger(__name__)

__virtualname__ = "mcheal_ctx"

_FALLBACK_DEFAULTS = {
    "enabled": True,
    "verify_timeout": 1.0,
    "witness_wait": 4.0,
    "hold_down": 10,
    "dns_ttl": None,
    "dns_timeout": 2.0,
    "propagation_timeout": 3.0,
    "lock_timeout": 20,
    "partition_settle_timeout": 60,
    "health_services": ["heartbeat", "postfix", "dovecot"],
    "health_wait": 30.0,
    "health_interval": 0.3,
    "restart_heartbeat": True,
    "reconcile_interval": None,
    "reconcile_verify_timeout": 10.0,
    "presence_verify_timeout": 0.3,
    "repair_ip": True,
    "ip_grace": 3.0,
    "set_grain": True,
    "pillar_cache": 30,
    "promote_dns_secondary": True,
    "dns_state_timeout": 120.0,
    "watchdog": {
        "enabled": True,
        "touch_interval": 30,
        "heard_file": "/var/lib/mailcluster/master-heard",
    },
}
#: compiled pillars of this process, per minion id (the reactor's threads share them)
_PILLAR_CACHE = {}


def __virtual__():
    return __virtualname__


# --------------------------------------------------------------------------- pillar, settings
def file_roots():
    """Building block of mailcluster_failover: the roots the roles' files are read from
    (``mailcluster_roots`` of the master config first, then file_roots ``base``)."""
    roots = list((__opts__.get("file_roots") or {}).get("base") or [])
    extra = __opts__.get("mailcluster_roots") or []
    return list(extra) + roots


def find_file(*relpaths):
    """Building block of mailcluster_failover: the first of ``relpaths`` found in the file
    roots (:py:func:`file_roots`), or None."""
    for root in file_roots():
        for rel in relpaths:
            path = os.path.join(root, rel)
            if os.path.isfile(path):
                return path
    return None


def _defaults():
    path = find_file("selfheal/parameters/defaults.yaml", "salt/selfheal/parameters/defaults.yaml")
    data = copy.deepcopy(_FALLBACK_DEFAULTS)
    if path:
        with salt.utils.files.fopen(path, "r") as fh:
            loaded = salt.utils.yaml.safe_load(fh) or {}
        data = salt.utils.dictupdate.merge(data, loaded, merge_lists=False)
    return data


def compile_pillar(minion=None, fresh=False):
    """Building block of mailcluster_failover: the pillar of ``minion`` (any cluster node sees
    the cluster keys), compiled on the master; reused ``pillar_cache`` s unless ``fresh``."""
    minion = minion or __opts__.get("mailcluster_pillar_minion") or __opts__["id"]
    hit = _PILLAR_CACHE.get(minion)
    ttl = float((hit or {}).get("ttl", 0))
    if hit and not fresh and time.monotonic() - hit["at"] < ttl:
        return hit["pillar"]
    _, grains, _ = salt.utils.minions.get_minion_data(minion, __opts__)
    grains = dict(grains or {}, id=minion)
    pil = salt.pillar.Pillar(__opts__, grains, minion, "base")
    compiled = pil.compile_pillar()
    ttl = settings(compiled).get("pillar_cache") or 0
    _PILLAR_CACHE[minion] = {"pillar": compiled, "at": time.monotonic(), "ttl": ttl}
    return compiled


def settings(pillar):
    """Building block of mailcluster_failover: the self-healing settings, pillar
    ``mailcluster:selfheal`` over the defaults."""
    data = _defaults()
    override = ((pillar or {}).get("mailcluster") or {}).get("selfheal") or {}
    data = salt.utils.dictupdate.merge(data, override, merge_lists=False)
    # the pair's mover (pillar ha:mover, docs/keepalived.md): its unit is the one the health
    # check, the restart of a returning node and the partition's standby stop and start
    ha = (pillar or {}).get("ha") or {}
    mover = ha.get("mover") or (ha.get("lookup") or {}).get("mover") or "heartbeat"
    data["mover_service"] = mover
    data["health_services"] = [mover if s == "heartbeat" else s for s in data["health_services"]]
    return data


class RunContext:
    """What one run needs from pillar: nodes, peers, DNS servers, TSIG key, settings."""

    def __init__(self, pillar):
        self.pillar = pillar
        mc = pillar.get("mailcluster") or {}
        self.mc = mc
        self.settings = settings(pillar)
        # the unit that moves the pair's service IPs (ha:mover): the health check, the
        # restart of a returning node and the partition's standby stop and start act on it
        self.mover = self.settings["mover_service"]
        self.nodes = mc.get("nodes") or {}
        self.mail_nodes = self.with_role("mail")
        self.ha_nodes = self.with_role("ha")
        primaries = self.with_role("dns_primary")
        self.pillar_primary_id = primaries[0] if primaries else None
        self.dns_secondary_ids = self.with_role("dns_secondary")
        self.acting = None
        self.follow_state()
        cdomain = (mc.get("cluster") or {}).get("domain")
        self.cluster_domain = cdomain
        tsig = (mc.get("secrets") or {}).get("tsig") or {}
        dns_pillar = pillar.get("dns") or {}
        self.key_name = dns_pillar.get("key_name") or (dns_pillar.get("lookup") or {}).get(
            "key_name", "mailcluster-ddns"
        )
        self.keyring = None
        self.key_algorithm = tsig.get("algorithm") or "hmac-sha256"
        if tsig.get("secret"):
            self.keyring = __salt__["mcheal_dns.keyring"](self.key_name, tsig["secret"])

    def with_role(self, role):
        return sorted(n for n, d in self.nodes.items() if role in ((d or {}).get("roles") or []))

    def follow_state(self):
        """Point at the DNS node the runner's state file says takes the updates: the pillar
        primary, or the secondary standing in for it (re-read under the DNS lock: another
        run may have promoted one or given the DNS back meanwhile)."""
        acting = __salt__["mcheal_store.load"]().get("_dns_acting") or {}
        valid = acting.get("node") in self.dns_secondary_ids and acting.get("replaces") == (
            self.pillar_primary_id
        )
        self.acting = acting if valid else None
        self.use_primary(acting["node"] if valid else self.pillar_primary_id)

    def use_primary(self, node):
        """Send reads and updates to ``node``; the other reachable DNS nodes are secondaries
        (the pillar primary a secondary stands in for is left out: it is lost)."""
        self.dns_primary_id = node
        self.dns_primary = self.nodes[node]["ip"] if node else None
        lost = self.pillar_primary_id if node != self.pillar_primary_id else None
        self.dns_secondaries = [
            self.nodes[n]["ip"] for n in self.dns_secondary_ids if n not in (node, lost)
        ]

    def service_ip(self, node):
        return (self.nodes.get(node) or {}).get("service_ip")

    def peers(self, node):
        pool = self.ha_nodes if node in self.ha_nodes else self.mail_nodes
        return [n for n in pool if n != node]

    def mail_zones(self, zones):
        return [z for z in zones if z != self.cluster_domain]


def context(pillar):
    """Building block of mailcluster_failover: the :py:class:`RunContext` of one run."""
    return RunContext(pillar)


# --------------------------------------------------------------------------- minion calls
def call(minion, fun, arg=(), timeout=1.0, kwarg=None, cancel=None):
    """
    Building block of mailcluster_failover: publish ``fun`` to one minion and wait at most
    ``timeout`` seconds for its return (less when the ``cancel`` event is set meanwhile).
    Returns ``(answered, return, success)``; never waits for find_job rounds.
    """
    client = salt.client.LocalClient(mopts=__opts__)
    try:
        args = list(arg)
        if kwarg:
            args.append(dict(kwarg, __kwarg__=True))
        try:
            pub = client.run_job(minion, fun, args, timeout=timeout, listen=True)
        except Exception as exc:  # pylint: disable=broad-except
            return False, f"publish failed: {exc}", False
        if not pub or not pub.get("jid"):
            return False, "publish failed", False
        if minion not in (pub.get("minions") or [minion]):
            return False, "no accepted key", False
        deadline = time.monotonic() + float(timeout)
        tag = f"salt/job/{pub['jid']}/ret/{minion}"
        for raw in client.get_returns_no_block(tag):
            if raw is None:
                if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                    return False, None, False
                time.sleep(0.005)
                continue
            data = raw.get("data") or {}
            if data.get("id") != minion:
                continue
            return True, data.get("return"), data.get("success", True)
        return False, None, False
    finally:
        with contextlib.suppress(Exception):
            client.destroy()


def parallel(*funcs):
    """Building block of mailcluster_failover: run each of ``funcs`` (no arguments) in its own
    thread and wait for all. Each thread gets a copy of the caller's context: a new thread
    starts without the runner loader's, and ``__salt__`` would not resolve there."""
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(func,), daemon=True)
        for func in funcs
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
