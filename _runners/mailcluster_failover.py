# ruff: noqa: F821  (Salt injects __opts__ into loader modules)
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
- :py:func:`verify`, :py:func:`status`: read-only.

A node is declared lost only when both witnesses agree: (1) the master gets no answer to
``test.ping`` within ``verify_timeout``; (2) heartbeat on the node's peer says ``dead`` (polled
for up to ``witness_wait``). A forged event about a live node therefore changes nothing and
fires ``mailcluster/failover/<node>/refused`` with the reason.

DNS: the desired records are the roles' own (``mailcluster.zones`` in ``_modules/mailcluster.py``,
with the lost nodes in the ``mailcluster_dns_withdrawn`` set), so a later highstate of the DNS
primary writes exactly what the failover wrote. The current records are read from the
primary by AXFR (TSIG), the differing rrsets are replaced with one signed UPDATE per zone
(BIND bumps the SOA serial, the secondaries follow by NOTIFY/IXFR). A node counts as failed
over when its service IP is in no A record of any mail domain. The mail records are never
emptied (the roles' zones keep every node when all would go).

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
import copy
import errno
import fcntl
import importlib.util
import json
import logging
import os
import threading
import time

import salt.client
import salt.pillar
import salt.utils.dictupdate
import salt.utils.event
import salt.utils.files
import salt.utils.minions
import salt.utils.yaml

try:
    import dns.exception
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    import dns.tsigkeyring
    import dns.update
    import dns.zone

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover
    HAS_DNSPYTHON = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_failover"

AUDIT_PREFIX = "mailcluster/failover"
#: record types the failover may change (the TSIG key's update-policy in salt/dns)
MANAGED_TYPES = ("A", "AAAA", "MX", "TXT")
LOST_WORDS = {"dead", "lost", "down", "connecting", "standalone", "wfconnection", "unknown"}
BACK_WORDS = {"active", "up", "connected", "back", "new"}
_FALLBACK_DEFAULTS = {
    "enabled": True,
    "verify_timeout": 1.0,
    "witness_wait": 4.0,
    "hold_down": 10,
    "dns_ttl": None,
    "dns_timeout": 2.0,
    "propagation_timeout": 3.0,
    "lock_timeout": 20,
    "health_services": ["heartbeat", "postfix", "dovecot"],
    "health_wait": 30.0,
    "restart_heartbeat": True,
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
_PILLAR_CACHE = {}
_ROLES_MOD = {}
_STATE_GUARD = threading.Lock()
#: held while the records are read and rewritten: two nodes' runs, or a run and the engine's
#: drift repair, must never compute the withdrawn set from each other's half-applied update
DNS_LOCK = "_dns"
#: grain of _modules/mailcluster.py naming the DNS node that acts as the primary
ACTING_GRAIN = "mailcluster_dns_acting_primary"
WITHDRAWN_GRAIN = "mailcluster_dns_withdrawn"


def __virtual__():
    if not HAS_DNSPYTHON:
        return (False, "dnspython is not installed")
    return __virtualname__


# --------------------------------------------------------------------------- small helpers
def _now():
    return time.time()


def _fire(node, what, payload):
    """Fire an audit event ``mailcluster/failover/<node>/<what>`` on the master bus."""
    data = dict(payload, node=node, event=what, time=_now())
    tag = f"{AUDIT_PREFIX}/{node}/{what}"
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as ev:
        ev.fire_event(data, tag)
    # the same record in <cachedir>/mailcluster_failover/audit.jsonl, for a later look
    with contextlib.suppress(OSError):
        line = json.dumps({"tag": tag, **data}, default=str, sort_keys=True)
        with salt.utils.files.fopen(os.path.join(_workdir(), "audit.jsonl"), "a") as fh:
            fh.write(line + "\n")
    log.info("%s: %s", tag, json.dumps(payload, default=str)[:500])
    return tag


def _workdir():
    path = os.path.join(__opts__["cachedir"], "mailcluster_failover")
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def _node_lock(node, timeout):
    """Exclusive lock named ``node`` (flock: works across threads, processes and salt-run).
    Per mail node, and ``DNS_LOCK`` around every read-modify-write of the records."""
    path = os.path.join(_workdir(), f"{node}.lock")
    fh = salt.utils.files.fopen(path, "a+")
    deadline = time.monotonic() + float(timeout)
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _state_path():
    return os.path.join(_workdir(), "state.json")


def _load_state():
    try:
        with salt.utils.files.fopen(_state_path(), "r") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _change_state(mutate):
    """Read-modify-write of the state file under a flock (threads, the engine and salt-run
    share it); ``mutate(state)`` changes the dict in place."""
    with _STATE_GUARD:
        path = _state_path()
        lock = salt.utils.files.fopen(path + ".lock", "a+")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            state = _load_state()
            mutate(state)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
            with salt.utils.files.fopen(tmp, "w") as fh:
                json.dump(state, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()
        return state


def _update_state(node, **values):
    """Record per-node metadata (last change for the hold-down; the DNS is the truth)."""
    return _change_state(lambda state: state.setdefault(node, {}).update(values))


def _record_withdrawn(withdrawn):
    """The last withdrawn set, for when the DNS primary cannot be read."""
    return _change_state(lambda state: state.__setitem__("_withdrawn", sorted(withdrawn)))


# --------------------------------------------------------------------------- pillar, settings
def _file_roots():
    roots = list((__opts__.get("file_roots") or {}).get("base") or [])
    extra = __opts__.get("mailcluster_roots") or []
    return list(extra) + roots


def _find_file(*relpaths):
    for root in _file_roots():
        for rel in relpaths:
            path = os.path.join(root, rel)
            if os.path.isfile(path):
                return path
    return None


def _defaults():
    path = _find_file("selfheal/parameters/defaults.yaml", "salt/selfheal/parameters/defaults.yaml")
    data = copy.deepcopy(_FALLBACK_DEFAULTS)
    if path:
        with salt.utils.files.fopen(path, "r") as fh:
            loaded = salt.utils.yaml.safe_load(fh) or {}
        data = salt.utils.dictupdate.merge(data, loaded, merge_lists=False)
    return data


def _pillar(minion=None, fresh=False):
    """The pillar of ``minion`` (any cluster node sees the cluster keys), compiled on the master."""
    minion = minion or __opts__.get("mailcluster_pillar_minion") or __opts__["id"]
    hit = _PILLAR_CACHE.get(minion)
    ttl = float((hit or {}).get("ttl", 0))
    if hit and not fresh and time.monotonic() - hit["at"] < ttl:
        return hit["pillar"]
    _, grains, _ = salt.utils.minions.get_minion_data(minion, __opts__)
    grains = dict(grains or {}, id=minion)
    pil = salt.pillar.Pillar(__opts__, grains, minion, "base")
    compiled = pil.compile_pillar()
    ttl = _selfheal_settings(compiled).get("pillar_cache") or 0
    _PILLAR_CACHE[minion] = {"pillar": compiled, "at": time.monotonic(), "ttl": ttl}
    return compiled


def _selfheal_settings(pillar):
    data = _defaults()
    override = ((pillar or {}).get("mailcluster") or {}).get("selfheal") or {}
    return salt.utils.dictupdate.merge(data, override, merge_lists=False)


def _roles_module():
    """``_modules/mailcluster.py`` (the roles' zone computation), loaded from file_roots."""
    path = _find_file("_modules/mailcluster.py")
    if not path:
        return None
    mtime = os.stat(path).st_mtime
    hit = _ROLES_MOD.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    spec = importlib.util.spec_from_file_location("_mailcluster_roles_for_failover", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _ROLES_MOD[path] = (mtime, mod)
    return mod


class _Ctx:
    """What one run needs from pillar: nodes, peers, DNS servers, TSIG key, settings."""

    def __init__(self, pillar):
        self.pillar = pillar
        mc = pillar.get("mailcluster") or {}
        self.mc = mc
        self.settings = _selfheal_settings(pillar)
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
            self.keyring = dns.tsigkeyring.from_text({self.key_name: tsig["secret"]})

    def with_role(self, role):
        return sorted(n for n, d in self.nodes.items() if role in ((d or {}).get("roles") or []))

    def follow_state(self):
        """Point at the DNS node the runner's state file says takes the updates: the pillar
        primary, or the secondary standing in for it (re-read under ``DNS_LOCK``: another
        run may have promoted one or given the DNS back meanwhile)."""
        acting = _load_state().get("_dns_acting") or {}
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

    def zones(self, withdrawn):
        """Desired zones ``{zone: set((name, ttl, type, data))}`` for a withdrawn set."""
        mod = _roles_module()
        if mod is None:
            raise RuntimeError("_modules/mailcluster.py not found in file_roots")
        mod.__pillar__ = self.pillar
        mod.__grains__ = {"id": __opts__["id"], "mailcluster_dns_withdrawn": sorted(withdrawn)}
        mod.__salt__ = {}
        out = {}
        ttl_override = self.settings.get("dns_ttl")
        for zone, records in mod.zones().items():
            recs = set()
            for name, ttl, rtype, data in records:
                if ttl_override and rtype in MANAGED_TYPES and zone != self.cluster_domain:
                    ttl = int(ttl_override)
                recs.add((_norm_name(name), int(ttl), rtype, _norm_data(rtype, data, zone)))
            out[zone] = recs
        return out

    def mail_zones(self, zones):
        return [z for z in zones if z != self.cluster_domain]


def _norm_name(name):
    return "@" if name in ("@", "") else name.rstrip(".")


def _norm_data(rtype, data, zone):
    """Rdata text as an AXFR gives it: names inside made absolute against ``zone``."""
    origin = dns.name.from_text(zone)
    rd = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.from_text(rtype), data, origin=origin, relativize=False
    )
    return rd.to_text()


# --------------------------------------------------------------------------- minion calls
def _call(minion, fun, arg=(), timeout=1.0, kwarg=None, cancel=None):
    """
    Publish ``fun`` to one minion and wait at most ``timeout`` seconds for its return (less
    when the ``cancel`` event is set meanwhile). Returns ``(answered, return, success)``;
    never waits for find_job rounds.
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


def _verify_lost(ctx, node, mode=None):
    """
    Both witnesses, in parallel. Returns ``(lost, reason, witnesses)``. The master's ping
    timeout depends on what started the run (``mode``): ``reconcile`` (no event says the
    node just died: ``reconcile_verify_timeout``, so minions reconnecting after a master
    restart are not taken for dead), ``presence`` (the master saw the minion's connection
    drop: ``presence_verify_timeout`` only confirms it did not come back), else
    ``verify_timeout``.
    """
    result, stop = {}, threading.Event()
    timeout = {
        "reconcile": ctx.settings.get("reconcile_verify_timeout"),
        "presence": ctx.settings.get("presence_verify_timeout"),
    }.get(mode)
    threads = [
        threading.Thread(
            target=_master_witness, args=(ctx, node, result, stop, timeout), daemon=True
        ),
        threading.Thread(target=_peer_witness, args=(ctx, node, result, stop), daemon=True),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
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


def _healthy(ctx, node):
    """A returning node: minion answers, its services are active, the peer sees it active."""
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
            answered, ret, ok = _call(peer, "heartbeat.node_status", [node], timeout=2.0)
            seen[peer] = ret if answered and ok else "no answer"
        result["peer"] = seen

    threads = [threading.Thread(target=f, daemon=True) for f in (on_node, on_peer)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    nres, pres = result.get("node") or {}, result.get("peer") or {}
    if not nres.get("answered"):
        return False, f"{node} does not answer the master", result
    if not nres.get("ok"):
        return False, f"{node}: services not all active: {nres.get('services')}", result
    if pres and not any(v == "active" for v in pres.values()):
        return False, f"heartbeat on the peer does not see {node} active: {pres}", result
    return True, f"{node} answers, services active, peer sees it active", result


# --------------------------------------------------------------------------- DNS
def _axfr(ctx, zone):
    """Records of ``zone`` on the DNS primary: ``(serial, set((name, ttl, type, data)))``."""
    xfr = dns.query.xfr(
        ctx.dns_primary,
        zone,
        keyring=ctx.keyring,
        keyname=ctx.key_name if ctx.keyring else None,
        keyalgorithm=ctx.key_algorithm,
        timeout=float(ctx.settings["dns_timeout"]),
        lifetime=float(ctx.settings["dns_timeout"]) * 2,
        relativize=False,
    )
    # absolute names inside the rdata (MX targets), owners relative to the zone
    z = dns.zone.from_xfr(xfr, relativize=False, check_origin=False)
    origin = dns.name.from_text(zone)
    serial, recs = 0, set()
    for name, ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "SOA":
            serial = rdata.serial
            continue
        owner = name.relativize(origin).to_text()
        recs.add((_norm_name(owner), int(ttl), rtype, rdata.to_text()))
    return serial, recs


def _answers_soa(ctx, zone, tries=2):
    """The DNS primary answers an SOA query for ``zone`` (a dead one costs ``tries`` x 0.5 s
    here instead of the transfer's whole ``dns_timeout`` lifetime, twice per run)."""
    per_try = min(0.5, float(ctx.settings["dns_timeout"]))
    for _ in range(tries):
        with contextlib.suppress(Exception):
            if _soa_serial(ctx.dns_primary, zone, per_try) is not None:
                return True
    return False


def _dns_actual(ctx, zones):
    actual, errors = {}, {}
    if zones and not _answers_soa(ctx, zones[0]):
        errors[zones[0]] = f"no SOA answer from {ctx.dns_primary}"
        return actual, errors
    for zone in zones:
        try:
            actual[zone] = _axfr(ctx, zone)
        except (OSError, dns.exception.Timeout) as exc:
            # the server is unreachable: the other zones would each wait dns_timeout again
            errors[zone] = f"{type(exc).__name__}: {exc}"
            break
        except Exception as exc:  # pylint: disable=broad-except
            errors[zone] = f"{type(exc).__name__}: {exc}"
    return actual, errors


def _withdrawn_in(ctx, actual):
    """Mail nodes whose service IP is in no A record of any mail zone (failed over)."""
    if not ctx.mail_zones(actual):
        return set()
    present = set()
    for zone in ctx.mail_zones(actual):
        present |= {data for _, _, rtype, data in actual[zone][1] if rtype == "A"}
    return {n for n in ctx.mail_nodes if ctx.service_ip(n) and ctx.service_ip(n) not in present}


def _rrsets(records):
    out = {}
    for name, ttl, rtype, data in records:
        if rtype not in MANAGED_TYPES:
            continue
        out.setdefault((name, rtype), set()).add((ttl, data))
    return out


def _diff(have, want):
    """``{(name, type): (ttl, [data]) or None}``: rrsets to replace (None: delete)."""
    h, w = _rrsets(have), _rrsets(want)
    changes = {}
    for key in sorted(set(h) | set(w)):
        if h.get(key) == w.get(key):
            continue
        if key in w:
            ttls = {t for t, _ in w[key]}
            changes[key] = (min(ttls), sorted(d for _, d in w[key]))
        else:
            changes[key] = None
    return changes


def _never_empty(ctx, zone, want):
    """Every mail zone keeps at least one A record on a mail node's service IP."""
    svc = {ctx.service_ip(n) for n in ctx.mail_nodes}
    return any(rtype == "A" and data in svc for _, _, rtype, data in want)


def _send_update(ctx, zone, changes):
    upd = dns.update.UpdateMessage(
        zone,
        keyring=ctx.keyring,
        keyname=ctx.key_name if ctx.keyring else None,
        keyalgorithm=ctx.key_algorithm,
    )
    for (name, rtype), target in changes.items():
        if target is None:
            upd.delete(name, rtype)
        else:
            ttl, datas = target
            upd.replace(name, ttl, rtype, *datas)
    resp = dns.query.tcp(upd, ctx.dns_primary, timeout=float(ctx.settings["dns_timeout"]))
    rcode = resp.rcode()
    if rcode != dns.rcode.NOERROR:
        raise RuntimeError(
            f"update of {zone} refused by {ctx.dns_primary}: {dns.rcode.to_text(rcode)}"
        )


def _soa_serial(server, zone, timeout):
    """The roles' own query (``mailcluster.soa_serial``, which a secondary runs as a witness):
    the serial ``server`` serves for ``zone``, None without an answer."""
    return _roles_module().soa_serial(zone, server=server, timeout=timeout)


def _wait_serials(ctx, zones, t_start):
    """Seconds (from ``t_start``) until each DNS server serves each zone's primary serial."""
    timeout = float(ctx.settings["propagation_timeout"])
    per_query = min(0.5, float(ctx.settings["dns_timeout"]))
    want = {}
    for zone in zones:
        with contextlib.suppress(Exception):
            serial = _soa_serial(ctx.dns_primary, zone, per_query)
            if serial is not None:  # a zone the primary does not answer for is not waited on
                want[zone] = serial
    servers = [ctx.dns_primary, *ctx.dns_secondaries]
    seen = {}
    deadline = time.monotonic() + timeout
    pending = {(s, z) for s in servers for z in want}
    while pending and time.monotonic() < deadline:
        for server, zone in sorted(pending):
            with contextlib.suppress(Exception):
                serial = _soa_serial(server, zone, per_query)
                if serial is not None and serial >= want[zone]:
                    seen.setdefault(server, {})[zone] = round(time.monotonic() - t_start, 3)
                    pending.discard((server, zone))
        if pending:
            time.sleep(0.02)
    return {
        "serials": want,
        "servers": {s: max(seen.get(s, {}).values(), default=None) for s in servers},
        "complete": not pending,
        "missing": sorted(f"{s}:{z}" for s, z in pending),
    }


def _apply_dns(ctx, withdrawn, actual):
    """Bring every zone to the desired records for ``withdrawn``. Returns a report dict."""
    t0 = time.monotonic()
    want = ctx.zones(withdrawn)
    report = {"withdrawn": sorted(withdrawn), "zones": {}, "changed": []}
    todo = {}
    for zone, records in want.items():
        if zone not in actual:
            continue
        if zone != ctx.cluster_domain and not _never_empty(ctx, zone, records):
            raise RuntimeError(f"refusing to empty the mail records of {zone}")
        changes = _diff(actual[zone][1], records)
        if changes:
            todo[zone] = changes
    for zone, changes in sorted(todo.items()):
        _send_update(ctx, zone, changes)
        report["changed"].append(zone)
        report["zones"][zone] = {
            f"{name} {rtype}": (None if target is None else target[1])
            for (name, rtype), target in changes.items()
        }
    report["update_seconds"] = round(time.monotonic() - t0, 3)
    if todo:
        report["propagation"] = _wait_serials(ctx, sorted(todo), t0)
    return report


def _set_grain(ctx, withdrawn):
    if not ctx.settings.get("set_grain") or not ctx.dns_primary_id:
        return None
    answered, _ret, ok = _call(
        ctx.dns_primary_id,
        "grains.setval",
        [WITHDRAWN_GRAIN, sorted(withdrawn)],
        timeout=10,
    )
    return bool(answered and ok)


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


# --------------------------------------------------------------------------- DNS stand-in
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


def _primary_lost(ctx, candidate):
    """
    Two witnesses that the pillar DNS primary is gone: the master gets no ``test.ping``
    answer, and ``candidate`` (a secondary, from its own network position) gets no SOA from
    its BIND. Returns ``(lost, reason, witnesses)``.
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
            "mailcluster.soa_serial",
            [ctx.cluster_domain],
            kwarg={"server": lost_ip, "timeout": ctx.settings["verify_timeout"]},
            timeout=float(ctx.settings["verify_timeout"]) + 4.0,
        )
        witnesses["secondary"] = {"node": candidate, "answered": bool(answered and ok)}
        witnesses["secondary"]["soa"] = serial

    threads = [threading.Thread(target=f, daemon=True) for f in (master, secondary)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    serial = witnesses["secondary"]["soa"]
    if witnesses["master"]["answered"]:
        return False, f"{lost_id} answers the master (its BIND does not: not a loss)", witnesses
    if not witnesses["secondary"]["answered"]:
        return False, f"{candidate} cannot witness: {serial}", witnesses
    if serial is not None:
        return False, f"{lost_id}'s BIND answers {candidate} (serial {serial})", witnesses
    return True, f"{lost_id} silent to the master and its BIND silent to {candidate}", witnesses


def _promotion_candidates(ctx):
    """DNS secondaries, those outside the lost primary's data centre first."""
    lost_dc = (ctx.nodes.get(ctx.pillar_primary_id) or {}).get("dc")
    return sorted(
        ctx.dns_secondary_ids,
        key=lambda n: ((ctx.nodes[n].get("dc") == lost_dc and lost_dc is not None), n),
    )


def _served_serials(ctx, server_ip, zones):
    per_query = float(ctx.settings["dns_timeout"])
    out = {}
    for zone in zones:
        with contextlib.suppress(Exception):
            serial = _soa_serial(server_ip, zone, per_query)
            if serial is not None:
                out[zone] = serial
    return out


def _promote_secondary(ctx, withdrawn, base):
    """
    The pillar DNS primary is unreadable while DNS must change: when both witnesses say it
    is lost, make a secondary the acting primary (grain ``mailcluster_dns_acting_primary``,
    the dns role's own states write its zones and config, serials above the ones it served)
    and point ``ctx`` at it; the other secondaries follow it. Called under ``DNS_LOCK``.
    Returns ``(promoted, reason)``.
    """
    lost_id = ctx.pillar_primary_id
    if ctx.acting:
        return False, f"{ctx.acting['node']} acts as the DNS primary already"
    if not ctx.settings.get("promote_dns_secondary", True):
        return False, "promote_dns_secondary is false"
    candidates = _promotion_candidates(ctx)
    if not lost_id or not candidates:
        return False, "no DNS secondary in pillar to stand in for the primary"
    reason, witnesses = "", {}
    for candidate in candidates:
        lost, reason, witnesses = _primary_lost(ctx, candidate)
        if lost or witnesses["master"]["answered"]:
            break
    if not lost:
        return False, f"not promoting a secondary: {reason}"
    t0 = _now()
    zones = sorted(ctx.zones(set()))
    floors = _served_serials(ctx, ctx.nodes[candidate]["ip"], zones)
    _fire(lost_id, "started", dict(base, action="dns_promote", node_acting=candidate))
    grains = {WITHDRAWN_GRAIN: sorted(withdrawn), ACTING_GRAIN: candidate}
    answered, ret, ok = _call(candidate, "grains.setvals", [grains], timeout=10.0)
    if not (answered and ok):
        return False, f"promoting {candidate}: grains.setvals failed: {ret}"
    ok, summary = _state_sls(
        candidate, "dns.secondary", ctx, pillar={"dns": {"serial_floor": floors}}
    )
    if not ok:
        _call(candidate, "grains.delkey", [ACTING_GRAIN], timeout=10.0)
        _fire(lost_id, "refused", dict(base, action="dns_promote", reason=summary))
        return False, f"promoting {candidate}: {summary}"
    acting = {"node": candidate, "replaces": lost_id, "since": _now()}
    _change_state(lambda state: state.__setitem__("_dns_acting", acting))
    ctx.acting = acting
    ctx.use_primary(candidate)
    followers = _follow_primary(ctx, candidate)
    _fire(
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
            seconds=round(_now() - t0, 3),
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


def _restore_primary(ctx, force=False):
    """
    The pillar DNS primary is back (answers the master, its BIND answers): it takes the
    acting primary's records with higher serials (grain + ``dns.primary`` with a serial
    floor), then the acting one becomes a secondary again. None when there is nothing to do.
    """
    if not ctx.acting:
        return None
    lost_id, acting_id = ctx.acting["replaces"], ctx.acting["node"]
    lost_ip = ctx.nodes[lost_id]["ip"]
    answered, ret, _ = _call(lost_id, "test.ping", timeout=ctx.settings["verify_timeout"])
    if not (answered and ret is True):
        return None
    zones = sorted(ctx.zones(set()))
    if not _served_serials(ctx, lost_ip, zones[:1]):
        return None  # its BIND is not up yet
    if not force and _hold_down_reason(ctx, lost_id):
        return None  # a failed attempt: not again before hold_down
    base = _audit_base("reconcile" if not force else "manual", None, None, "back")
    with _node_lock(DNS_LOCK, ctx.settings["lock_timeout"]) as locked:
        ctx.follow_state()
        if not locked or not ctx.acting:
            return None
        t0 = _now()
        # an unreadable stand-in gives way all the same: the last recorded withdrawn set,
        # the serials that can be read
        withdrawn, actual, errors = _current_withdrawn(ctx)
        if errors:
            log.warning("mailcluster_failover: %s unreadable at restore: %s", acting_id, errors)
        floors = {zone: serial for zone, (serial, _) in actual.items()}
        _fire(lost_id, "started", dict(base, action="dns_restore", node_acting=acting_id))
        grain = [WITHDRAWN_GRAIN, sorted(withdrawn)]
        answered, ret, ok = _call(lost_id, "grains.setval", grain, timeout=10.0)
        if not (answered and ok):
            return _refuse(lost_id, base, f"grains.setval failed: {ret}", "dns_restore")
        ok, summary = _state_sls(
            lost_id, "dns.primary", ctx, pillar={"dns": {"serial_floor": floors}}
        )
        ctx.use_primary(lost_id)
        have, errors = _dns_actual(ctx, zones)
        behind = sorted(z for z in zones if z not in have or have[z][0] <= floors.get(z, 0))
        if not ok or errors or behind or _diff_zones(ctx, withdrawn, have):
            ctx.use_primary(acting_id)
            _update_state(lost_id, changed=_now(), action="dns_restore")
            reason = f"{lost_id} not restored ({summary}; errors {errors}; behind {behind})"
            return _refuse(lost_id, base, reason, "dns_restore", result="failed")
        answered, ret, ok = _call(acting_id, "grains.delkey", [ACTING_GRAIN], timeout=10.0)
        demoted = _state_sls(acting_id, "dns.secondary", ctx)[1]
        followers = _follow_primary(ctx, lost_id)
        _change_state(lambda state: state.pop("_dns_acting", None))
        ctx.acting = None
        propagation = _wait_serials(ctx, zones, time.monotonic())
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
        seconds=round(_now() - t0, 3),
    )
    _fire(lost_id, "dns_restored", payload)
    return {"node": lost_id, "result": "dns_restored", **payload}


def _diff_zones(ctx, withdrawn, actual):
    """Zones whose managed records differ from the desired ones for ``withdrawn``."""
    want = ctx.zones(withdrawn)
    return sorted(z for z in want if z in actual and _diff(actual[z][1], want[z]))


# --------------------------------------------------------------------------- decisions
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


def _audit_base(trigger, tag, data, claim):
    data = data or {}
    return {
        "trigger": trigger,
        "tag": tag,
        "sender": data.get("id"),
        "claim": claim,
    }


def _refuse(node, base, reason, action=None, witnesses=None, fire=True, result="refused"):
    """Fire the ``refused`` audit event (unless ``fire`` is false) and return the run's result."""
    if fire:
        extra = {k: v for k, v in (("action", action), ("witnesses", witnesses)) if v is not None}
        _fire(node, "refused", dict(base, reason=reason, **extra))
    out = {"node": node, "result": result, "reason": reason}
    if witnesses is not None:
        out["witnesses"] = witnesses
    return out


def _hold_down_reason(ctx, node):
    """Why ``node`` may not change yet (``hold_down`` since its last change), or None."""
    last = (_load_state().get(node) or {}).get("changed")
    left = float(ctx.settings["hold_down"]) - (_now() - float(last)) if last else 0.0
    if left <= 0:
        return None
    return f"hold-down: {left:.1f} s left before {node} may change again"


def _evaluate(
    node, trigger="manual", claim=None, tag=None, data=None, want=None, quiet=False, pinged=False
):
    """
    Look at ``node`` and do what its real state calls for. ``want`` limits the action
    (``failover``/``failback``); ``claim`` is what the trigger said (only for the audit);
    ``pinged``: the reconcile's own ping found the node silent already (no second one).
    """
    t_start = _now()
    base = _audit_base(trigger, tag, data, claim)
    timing = base["timing"] = {}
    pil = _pillar()
    ctx = _Ctx(pil)
    timing["pillar"] = round(_now() - t_start, 3)
    if node not in ctx.mail_nodes:
        reason = f"{node} is not a mail node in pillar"
        return _refuse(node, base, reason, fire=not quiet and trigger in ("beacon", "manual"))

    with _node_lock(node, ctx.settings["lock_timeout"]) as locked:
        if not locked:
            return _refuse(node, base, f"another run holds the lock of {node}")

        t0 = _now()
        # unreadable DNS: the last recorded set decides what to look at; _act refuses to change
        is_out = node in _current_withdrawn(ctx)[0]
        timing["dns_read"] = round(_now() - t0, 3)

        if not is_out and want != "failback":
            if claim == "back" and trigger != "manual":
                return {"node": node, "result": "noop", "reason": f"{node} is in DNS already"}
            if trigger == "reconcile" and not pinged:
                answered, ret, _ = _call(node, "test.ping", timeout=ctx.settings["verify_timeout"])
                if answered and ret is True:
                    return {"node": node, "result": "noop", "reason": f"{node} answers"}
            t0 = _now()
            mode = "presence" if trigger == "presence" and claim == "lost" else trigger
            lost, reason, witnesses = _verify_lost(ctx, node, mode=mode)
            timing["verify"] = round(_now() - t0, 3)
            if not lost:
                fire = not quiet or claim == "lost"
                return _refuse(node, base, reason, "failover", witnesses, fire=fire)
            return _act(ctx, node, "failover", base, witnesses, t_start)
        if is_out and want != "failover":
            if claim == "lost" and trigger != "manual":
                return {"node": node, "result": "noop", "reason": f"{node} is failed over already"}
            held = _hold_down_reason(ctx, node)
            if held:
                return _refuse(node, base, held, "failback", fire=not quiet or claim == "back")
            ok, reason, health = _healthy(ctx, node)
            # a node that answers but is still starting (heartbeat's initdead, services):
            # keep looking for up to health_wait so that DNS follows as soon as it is healthy
            # (a minion that has just connected may not take jobs yet: same for presence "new")
            deadline = time.monotonic() + float(ctx.settings.get("health_wait") or 0)
            just_back = trigger in ("presence", "beacon") and claim == "back"
            restarted = False
            while not ok and ((health.get("node") or {}).get("answered") or just_back):
                if time.monotonic() >= deadline:
                    break
                services = (health.get("node") or {}).get("services") or {}
                if (
                    ctx.settings.get("restart_heartbeat")
                    and not restarted
                    and services.get("heartbeat") not in (None, "active", "activating")
                    and all(v == "active" for k, v in services.items() if k != "heartbeat")
                ):
                    # heartbeat 3 shuts itself down on one side when a partition heals
                    # ("returning after partition"): start it again, nothing else is missing
                    restarted = True
                    _call(node, "service.start", ["heartbeat"], timeout=15.0)
                time.sleep(0.3)
                ok, reason, health = _healthy(ctx, node)
            if restarted:
                health["heartbeat_restarted"] = True
            if not ok:
                fire = not quiet or claim == "back"
                return _refuse(node, base, reason, "failback", health, fire=fire)
            # when the runner saw it healthy: the failback's DNS time is measured from here
            health["healthy_at"] = _now()
            return _act(ctx, node, "failback", base, health, t_start)
        state = "failed over" if is_out else "in service"
        return {"node": node, "result": "noop", "reason": f"{node} is {state} already"}


def _act(ctx, node, action, base, witnesses, t_start):
    held = _hold_down_reason(ctx, node)
    if held:
        return _refuse(node, base, held, action, witnesses)
    if not ctx.settings.get("enabled", True):
        reason = f"auto-remediation disabled (mailcluster:selfheal:enabled); would {action}"
        return _refuse(node, base, reason, action, witnesses)
    with _node_lock(DNS_LOCK, ctx.settings["lock_timeout"]) as locked:
        if not locked:
            return _refuse(node, base, "another run holds the DNS lock", action, witnesses)
        # read again under the lock: the other node's run may have changed the records
        ctx.follow_state()
        withdrawn, actual, dns_errors = _current_withdrawn(ctx)
        if ctx.dns_primary and (dns_errors or not actual):
            # the primary is gone too (a whole data centre): a secondary takes its place
            promoted, why = _promote_secondary(ctx, withdrawn, base)
            if promoted:
                withdrawn, actual, dns_errors = _current_withdrawn(ctx)
            if not promoted or dns_errors or not actual:
                reason = f"DNS primary {ctx.dns_primary} unreadable: {dns_errors}; {why}"
                return _refuse(node, base, reason, action, witnesses)
        withdrawn = withdrawn | {node} if action == "failover" else withdrawn - {node}
        _fire(node, "started", dict(base, action=action, witnesses=witnesses))
        report = {"skipped": "no dns_primary in pillar"}
        try:
            if ctx.dns_primary:
                report = _apply_dns(ctx, withdrawn, actual)
        except Exception as exc:  # pylint: disable=broad-except
            reason = f"DNS update failed: {type(exc).__name__}: {exc}"
            return _refuse(node, base, reason, action, witnesses, result="failed")
        _update_state(node, changed=_now(), action=action)
        _record_withdrawn(withdrawn)
    payload = dict(
        base,
        action=action,
        dns=report,
        witnesses=witnesses,
        seconds=round(_now() - t_start, 3),
    )
    if action == "failover":
        payload["ip"] = _ensure_ip(ctx, node)
        _fire(node, "done", payload)
    else:
        _fire(node, "failback", payload)
    payload["grain"] = _set_grain(ctx, withdrawn)
    return {"node": node, "result": action, **payload}


def _current_withdrawn(ctx):
    """``(withdrawn, actual, errors)``: the failed-over nodes as the DNS primary says (the
    last recorded set when there is no primary or it cannot be read)."""
    if not ctx.dns_primary:
        return set(_load_state().get("_withdrawn") or []), {}, {}
    actual, errors = _dns_actual(ctx, sorted(ctx.zones(set())))
    if errors or not actual:
        return set(_load_state().get("_withdrawn") or []), actual, errors
    return _withdrawn_in(ctx, actual), actual, errors


# --------------------------------------------------------------------------- public runners
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
        ctx = _Ctx(_pillar())
        if ctx.acting and ctx.acting["replaces"] in back:
            # the DNS primary a secondary stood in for is back
            restored = _restore_primary(ctx)
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
    ctx = _Ctx(_pillar(fresh=True))
    out = []
    if ctx.acting and ctx.settings.get("enabled", True):
        restored = _restore_primary(ctx)
        if restored:
            out.append(restored)
    # cheap first pass without locks: a node in DNS that answers needs nothing
    withdrawn = _current_withdrawn(ctx)[0]
    answers = {}

    def ping(node):
        answered, ret, _ = _call(node, "test.ping", timeout=ctx.settings["verify_timeout"])
        answers[node] = bool(answered and ret is True)

    threads = [
        threading.Thread(target=ping, args=(n,), daemon=True)
        for n in ctx.mail_nodes
        if n not in withdrawn
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
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
    with _node_lock(DNS_LOCK, 0) as locked:
        if not locked:
            return None
        ctx.follow_state()
        withdrawn, actual, errors = _current_withdrawn(ctx)
        if errors or not actual:
            return None
        silent = sorted(set(ctx.mail_nodes) - set(withdrawn) - set(answered))
        if silent:
            log.info("mailcluster_failover: no drift repair while %s in DNS is silent", silent)
            return None
        try:
            report = _apply_dns(ctx, withdrawn, actual)
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
    ctx = _Ctx(_pillar(fresh=True))
    if not ctx.acting:
        return {"result": "noop", "reason": "no DNS secondary stands in for the primary"}
    return _restore_primary(ctx, force=True) or {
        "result": "noop",
        "reason": f"{ctx.acting['replaces']} or its BIND does not answer yet",
    }


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
    pillar = _pillar()
    watchdog = _selfheal_settings(pillar).get("watchdog") or {}
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


def verify(node):
    """
    Run both witnesses for ``node`` and say whether it would be declared lost; no change.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.verify mx1
    """
    ctx = _Ctx(_pillar(node))
    lost, reason, witnesses = _verify_lost(ctx, node)
    return {"node": node, "lost": lost, "reason": reason, "witnesses": witnesses}


def status():
    """
    What DNS says now (failed-over nodes), the last change per node and the settings.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_failover.status
    """
    ctx = _Ctx(_pillar())
    zones_list = sorted(ctx.zones(set()))
    actual, errors = _dns_actual(ctx, zones_list) if ctx.dns_primary else ({}, {})
    return {
        "withdrawn": sorted(_withdrawn_in(ctx, actual)) if actual and not errors else None,
        "serials": {z: s for z, (s, _) in actual.items()},
        "dns_errors": errors,
        "dns_primary": ctx.dns_primary_id,
        "dns_acting": ctx.acting,
        "state": _load_state(),
        "settings": {k: v for k, v in ctx.settings.items() if k != "beacon"},
    }
