# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): the DNS records.

- :py:func:`desired`: the records the roles want for a withdrawn set: the roles' own
  ``mailcluster_dns.zones`` (``_modules/mailcluster_dns.py``), so a later highstate of the
  DNS primary writes exactly what the failover wrote. It runs on the master in Salt's
  execution-module loader (``salt.loader.lazy.LazyLoader``, what ``minion_mods`` and the core
  ``salt.cmd`` runner build) over the ``_modules`` folders of the file_roots only; the loader
  is kept as long as this module lives (the runner loader's life: the engine's, or the
  reactor's ``reactor_refresh_interval``), built again when one of those files changes, and
  the run's pillar is handed to it per call.
- :py:func:`actual`, :py:func:`current_withdrawn`: the records the DNS node taking the
  updates serves (AXFR, TSIG-signed) in the zones a failover changes; a mail node counts as
  failed over when its service IP is in no A record of the mail host names. Layout
  ``cluster`` (docs/dns-scale.md): that is ONE zone, whatever the number of domains.
- :py:func:`apply`: one signed UPDATE per zone that differs (BIND bumps the SOA serial, the
  secondaries follow by NOTIFY/IXFR), then :py:func:`wait_serials` until every DNS server
  serves the new serials. The mail records are never emptied.
"""

import contextlib
import logging
import os
import threading
import time

import salt.loader.lazy

try:
    import dns.exception
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsigkeyring
    import dns.update
    import dns.zone

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover
    HAS_DNSPYTHON = False

log = logging.getLogger(__name__)

__virtualname__ = "mcheal_dns"

#: record types the failover may change (the TSIG key's update-policy in salt/dns)
MANAGED_TYPES = ("A", "AAAA", "MX", "TXT")
#: the roles' execution modules the runner calls on the master
ROLES_MODULES = ["mailcluster", "mailcluster_dns", "mailcluster_memo", "mailcluster_records"]
#: the minion loader of the roles' modules: {"key", "loader", "pillar"}
_ROLES = {}
#: guards _ROLES, and the pillar the loader's modules see during one call
_ROLES_LOCK = threading.Lock()


def __virtual__():
    if not HAS_DNSPYTHON:
        return (False, "dnspython is not installed")
    return __virtualname__


# --------------------------------------------------------------------------- the roles' modules
def _roles_key():
    """The ``_modules`` folders of the roots and their files' mtimes: a change reloads."""
    dirs = [os.path.join(r, "_modules") for r in __salt__["mcheal_ctx.file_roots"]()]
    dirs = [d for d in dirs if os.path.isdir(d)]
    files = []
    for d in dirs:
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(d), key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    files.append((entry.path, entry.stat().st_mtime_ns))
    return tuple(dirs), tuple(files)


def _roles_loader():
    """The minion loader of the roles' modules; call with ``_ROLES_LOCK`` held."""
    key = _roles_key()
    if _ROLES.get("key") != key:
        if not key[0]:
            raise RuntimeError("no _modules folder with mailcluster_dns.py in file_roots")
        opts = __opts__.copy()  # a plain dict (the runner's __opts__ is an OptsDict)
        opts["module_dirs"] = list(key[0])
        # the master's own synced extmods would come first: the file_roots' files decide
        opts["extension_modules"] = ""
        # one dict for the run's pillar, filled per call
        opts["pillar"] = pillar = {}
        opts["grains"] = {"id": __opts__["id"]}
        # Only the _modules folders, not minion_mods' ~400 core modules: the roles' zones and
        # soa_serial call nothing but each other, and the reactor's runner loader (so this
        # cache) is renewed every minute, on the route of a failback (12 ms -> 0.4 ms a build).
        loader = salt.loader.lazy.LazyLoader(
            list(key[0]),
            opts,
            tag="module",
            whitelist=ROLES_MODULES,
            pack_self="__salt__",
            loaded_base_name="mcheal_roles",
        )
        if "mailcluster_dns.zones" not in loader:
            raise RuntimeError(f"mailcluster_dns not loadable from {list(key[0])}")
        _ROLES.update(key=key, loader=loader, pillar=pillar)
    return _ROLES["loader"]


def _roles_call(pillar, fun, **kwargs):
    """``mailcluster_dns.<fun>`` of the roles' loader, with the run's pillar."""
    with _ROLES_LOCK:
        loader = _roles_loader()
        _ROLES["pillar"].clear()
        _ROLES["pillar"].update(pillar)
        # the memo lives one call: the modules look it up (a module left out of the whitelist
        # logged an error at every lookup), but the next call's pillar may be changed in place
        loader.pack["__context__"].pop("mailcluster_memo", None)
        try:
            return loader[f"mailcluster_dns.{fun}"](**kwargs)
        finally:
            _ROLES["pillar"].clear()


def _roles_zones(pillar, withdrawn):
    # only the zones a failover reads and changes: the one cluster zone in layout cluster
    return _roles_call(pillar, "zones", withdrawn=sorted(withdrawn), failover_only=True)


def zone_names(ctx):
    """Building block of mailcluster_failover: every zone the cluster serves (a promoted
    secondary's serial floors, a restore's checks), sorted."""
    return sorted(_roles_call(ctx.pillar, "zones", withdrawn=[]))


def failover_names(ctx):
    """Building block of mailcluster_failover: ``{zone: [owner]}``, the names whose A records
    follow the withdrawn set (``mailcluster_dns.failover_names``)."""
    return _roles_call(ctx.pillar, "failover_names")


def _soa_serial(server, zone, timeout):
    """The roles' own query (``mailcluster_dns.soa_serial``, which a secondary runs as a
    witness): the serial ``server`` serves for ``zone``, None without an answer."""
    with _ROLES_LOCK:
        loader = _roles_loader()
    return loader["mailcluster_dns.soa_serial"](zone, server=server, timeout=timeout)


def _norm_name(name):
    return "@" if name in ("@", "") else name.rstrip(".")


def _norm_data(rtype, data, zone):
    """Rdata text as an AXFR gives it: names inside made absolute against ``zone``."""
    origin = dns.name.from_text(zone)
    rd = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.from_text(rtype), data, origin=origin, relativize=False
    )
    return rd.to_text()


def desired(ctx, withdrawn):
    """Building block of mailcluster_failover: the desired zones ``{zone: set((name, ttl,
    type, data))}`` that depend on a withdrawn set (the roles' records, ``dns_ttl`` applied
    to the mail records): the one cluster zone in layout ``cluster``, every zone else."""
    out = {}
    ttl_override = ctx.settings.get("dns_ttl")
    moving = failover_names(ctx) if ttl_override else {}
    for zone, records in _roles_zones(ctx.pillar, withdrawn).items():
        recs = set()
        for name, ttl, rtype, data in records:
            mail = zone != ctx.cluster_domain or name in (moving.get(zone) or ())
            if ttl_override and rtype in MANAGED_TYPES and mail:
                ttl = int(ttl_override)
            recs.add((_norm_name(name), int(ttl), rtype, _norm_data(rtype, data, zone)))
        out[zone] = recs
    return out


def keyring(name, secret):
    """Building block of mailcluster_failover: the TSIG keyring of the run's context (the
    key that signs the transfers and updates)."""
    return dns.tsigkeyring.from_text({name: secret})


# --------------------------------------------------------------------------- reading
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


def actual(ctx, zones):
    """Building block of mailcluster_failover: ``(actual, errors)``, the records of ``zones``
    on the DNS primary ``{zone: (serial, records)}`` and what could not be read."""
    got, errors = {}, {}
    if zones and not _answers_soa(ctx, zones[0]):
        errors[zones[0]] = f"no SOA answer from {ctx.dns_primary}"
        return got, errors
    for zone in zones:
        try:
            got[zone] = _axfr(ctx, zone)
        except (OSError, dns.exception.Timeout) as exc:
            # the server is unreachable: the other zones would each wait dns_timeout again
            errors[zone] = f"{type(exc).__name__}: {exc}"
            break
        except Exception as exc:  # pylint: disable=broad-except
            errors[zone] = f"{type(exc).__name__}: {exc}"
    return got, errors


def withdrawn_in(ctx, actual):
    """Building block of mailcluster_failover: mail nodes whose service IP is in no A record
    of the mail host names (:py:func:`failover_names`) of ``actual`` (failed over). None of
    those names with an A record (a layout not served yet): nothing is withdrawn."""
    present = set()
    for zone, owners in failover_names(ctx).items():
        if zone in actual:
            present |= {d for n, _, t, d in actual[zone][1] if t == "A" and n in owners}
    if not present:
        return set()
    return {n for n in ctx.mail_nodes if ctx.service_ip(n) and ctx.service_ip(n) not in present}


def current_withdrawn(ctx):
    """Building block of mailcluster_failover: ``(withdrawn, actual, errors)``, the
    failed-over nodes as the DNS primary says (the last recorded set when there is no primary
    or it cannot be read)."""
    if not ctx.dns_primary:
        return set(__salt__["mcheal_store.load"]().get("_withdrawn") or []), {}, {}
    got, errors = actual(ctx, sorted(desired(ctx, set())))
    if errors or not got:
        return set(__salt__["mcheal_store.load"]().get("_withdrawn") or []), got, errors
    return withdrawn_in(ctx, got), got, errors


def served_serials(ctx, server_ip, zones):
    """Building block of mailcluster_failover: ``{zone: serial}`` that ``server_ip`` serves
    (zones without an answer left out)."""
    per_query = float(ctx.settings["dns_timeout"])
    out = {}
    for zone in zones:
        with contextlib.suppress(Exception):
            serial = _soa_serial(server_ip, zone, per_query)
            if serial is not None:
                out[zone] = serial
    return out


# --------------------------------------------------------------------------- changing
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


def differs(ctx, withdrawn, actual):
    """Building block of mailcluster_failover: zones whose managed records differ from the
    desired ones for ``withdrawn``."""
    want = desired(ctx, withdrawn)
    return sorted(z for z in want if z in actual and _diff(actual[z][1], want[z]))


def _never_empty(ctx, owners, want):
    """The mail host names of a zone keep at least one A record on a mail node's service IP."""
    svc = {ctx.service_ip(n) for n in ctx.mail_nodes}
    return any(t == "A" and d in svc and n in owners for n, _, t, d in want)


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


def wait_serials(ctx, zones, t_start):
    """Building block of mailcluster_failover: seconds (from ``t_start``) until each DNS
    server serves each zone's primary serial, at most ``propagation_timeout``."""
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


def apply(ctx, withdrawn, actual):
    """Building block of mailcluster_failover: bring every zone to the desired records for
    ``withdrawn`` (one signed UPDATE per zone that differs) and wait for the serials.
    Returns a report dict; raises when an update fails or would empty the mail records."""
    t0 = time.monotonic()
    want = desired(ctx, withdrawn)
    moving = failover_names(ctx)
    report = {"withdrawn": sorted(withdrawn), "zones": {}, "changed": []}
    todo = {}
    for zone, records in want.items():
        if zone not in actual:
            continue
        if zone in moving and not _never_empty(ctx, moving[zone], records):
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
        report["propagation"] = wait_serials(ctx, sorted(todo), t0)
    return report
