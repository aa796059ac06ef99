"""
DNS of the mail cluster: the zones computed from the ``mailcluster`` pillar, and the zone
writer of the DNS primary.

- :py:func:`zones`: every zone (NS, MX, round-robin A, SPF, and ``mailcluster_records``'
  DMARC, DKIM, MTA-STS, TLS-RPT and client set-up records), for the dns role and the failover
  runner alike. Layout ``cluster`` (docs/dns-scale.md): the mail hosts' addresses live in one
  cluster zone that every domain names (MX) or aliases (CNAME), so a failover changes that one
  zone; :py:func:`failover_names` says which names carry it.
- :py:func:`dns_plan`, :py:func:`dns_sync`: write the zone files that differ from pillar, the
  serial bumped only when the records change, ``rndc freeze``/``thaw`` around dynamic zones
  (docs/roles.md). :py:func:`soa_serial`: a DNS server's serial of a zone.

The topology comes from ``mailcluster`` through ``__salt__``, this loader's pillar passed along.
:py:func:`zones` and :py:func:`soa_serial` need no ``cmd`` and no grains (``withdrawn`` given):
the failover runner runs them on the master with its own pillar.
"""

import contextlib
import datetime
import hashlib
import json
import logging
import os
import tempfile
import time

from salt.utils.data import traverse_dict

try:
    import dns.message
    import dns.name
    import dns.query
    import dns.rdatatype
    import dns.zone

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover
    HAS_DNSPYTHON = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_dns"

PILLAR_KEY = "mailcluster"

#: grain the failover runner can set on the DNS primary: nodes whose service IP DNS leaves out
WITHDRAWN_GRAIN = "mailcluster_dns_withdrawn"

#: in the zone directory: size, mtime and digest of each zone file as last written
CACHE_FILE = ".mailcluster-state.json"


def __virtual__():
    if not HAS_DNSPYTHON:
        return (False, "dnspython is not installed (pip install dnspython)")
    if "mailcluster.nodes_with" not in __salt__:
        return (False, "the mailcluster execution module is not loaded")
    if "mailcluster_records.records" not in __salt__:
        return (False, "the mailcluster_records execution module is not loaded")
    return __virtualname__


def _cluster():
    return __pillar__.get(PILLAR_KEY) or {}


def _nodes_with(role, mc):
    # the pillar goes along: the loader behind __salt__ may hold another one (minion_mods
    # called with pillar= gives it to the outer loader only)
    return __salt__["mailcluster.nodes_with"](role, {PILLAR_KEY: mc})


# --------------------------------------------------------------------------- zones
def _dns_params():
    dns_pillar = __pillar__.get("dns") or {}
    params = {
        "ttl": 300,
        "rr_name": "mail",
        "mx_preference": 10,
        "spf_policy": "-all",
        "hostmaster": "hostmaster",
        # a secondary that missed a NOTIFY (down at the time) is stale for at most this long
        "refresh": 300,
        "retry": 60,
        "expire": 1209600,
        "minimum": 300,
    }
    params.update({k: v for k, v in dns_pillar.items() if k in params})
    return params


def _withdrawn():
    """Nodes whose service IP DNS leaves out: pillar list plus a grain the failover can set."""
    pillar_list = traverse_dict(__pillar__, "dns:withdrawn") or []
    grain_list = __grains__.get(WITHDRAWN_GRAIN) or []
    return set(pillar_list) | set(grain_list)


def zones(withdrawn=None, *, _mc=None, failover_only=False):
    """
    Every zone the cluster serves, ``{zone: [[name, ttl, type, data], ...]}`` (SOA excluded,
    names relative): the cluster's own domain (node names), the cluster zone of layout
    ``cluster`` when it is another name, and every pillar domain not marked absent.

    withdrawn
        Node ids whose service IP DNS leaves out (each one's name then resolves to the live
        nodes' IPs, and it leaves the round robin; the records are never emptied). Default:
        pillar ``dns:withdrawn`` plus grain ``mailcluster_dns_withdrawn``. Given, it replaces
        both, and no grain is read (the failover runner passes the set it keeps).
    failover_only
        Only the zones whose records depend on ``withdrawn`` (what a failover reads and
        changes): the one cluster zone in layout ``cluster``, every zone in ``per_domain``.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_dns.zones
        salt ns1 mailcluster_dns.zones withdrawn=mx1 failover_only=True
    """
    mc = _mc or _cluster()
    if withdrawn is None:  # the dns facts (_mc) need only the zone names: nothing withdrawn
        withdrawn = _withdrawn() if _mc is None else ()
    elif isinstance(withdrawn, str):  # from the CLI: withdrawn=mx1,mx2
        withdrawn = withdrawn.split(",")
    withdrawn = frozenset(withdrawn)
    # once per job (issue 14.2); no memo module in the failover runner's long-lived loader
    memo = __salt__.get("mailcluster_memo.once") or (lambda _n, _i, compute, _e: compute())
    inputs = [mc, __pillar__.get("dns"), __pillar__.get("mailcluster_dkim")]
    key = (withdrawn, bool(failover_only))
    return memo("zones", inputs, lambda: _zones(mc, withdrawn, failover_only), key)


def _zones(mc, withdrawn, failover_only):
    params = _dns_params()
    ttl, cdomain = params["ttl"], mc["cluster"]["domain"]
    names = __salt__["mailcluster_records.mail_names"](_mc=mc)
    ns_names = [
        f"{n}.{cdomain}." for n in _nodes_with("dns_primary", mc) + _nodes_with("dns_secondary", mc)
    ]
    mail_nodes = _nodes_with("mail", mc)
    live = [n for n in mail_nodes if n not in withdrawn] or mail_nodes  # never empty
    svc_ips = [mc["nodes"][n]["service_ip"] for n in live]
    base = [["@", ttl, "NS", ns] for ns in ns_names]
    out = {cdomain: _infra(mc, base, ttl)}
    # the mail hosts: [(owner, node or None for the round robin)]
    hosts = [(names["rr"], None)] + [(n, n) for n in mail_nodes]
    if names["layout"] == "cluster":
        zone = names["zone"]
        if zone != cdomain:
            out[zone] = list(base)
            if zone.endswith("." + cdomain):  # delegated from the cluster's own domain
                out[cdomain] += [[zone[: -len(cdomain) - 1], ttl, "NS", ns] for ns in ns_names]
        for owner, node in hosts:
            label = owner if node is None else f"{node}.{names['rr']}"
            out[zone] += _host_a(mc, label, node, live, svc_ips, ttl)
        if failover_only:
            return {zone: out[zone]}
    # SPF: every mail node's service IP; in layout per_domain only the live ones (as before)
    spf_nodes = live if names["layout"] == "per_domain" else mail_nodes
    spf_ips = [f"ip4:{ip}" for ip in sorted(mc["nodes"][n]["service_ip"] for n in spf_nodes)]
    spf = " ".join(["v=spf1", "mx", *spf_ips, params["spf_policy"]])
    for dom in (domains := _served_domains(mc)):
        recs = list(base)
        mx = __salt__["mailcluster_records.mx_hosts"](dom, _mc=mc)
        recs += [["@", ttl, "MX", f"{params['mx_preference']} {h}."] for h in mx]
        for owner, node in hosts:
            if names["layout"] == "cluster":
                # the client name and the legacy MX hosts: aliases of the cluster zone's hosts
                target = names["host"] if node is None else names["nodes"][node]
                recs.append([owner, ttl, "CNAME", f"{target}."])
            else:
                recs += _host_a(mc, owner, node, live, svc_ips, ttl)
        recs.append(["@", ttl, "TXT", f'"{spf}"'])
        out[dom] = recs
    # DMARC, DKIM, MTA-STS, TLS-RPT, client set-up (issue 13): mailcluster_records
    for dom in domains:
        more = __salt__["mailcluster_records.records"](
            dom, ttl=ttl, mail_host=params["rr_name"], _mc=mc, mail_target=names["host"]
        )
        for zone, recs in more.items():
            if zone in out and zone != cdomain:
                out[zone] += recs
    return out


def _infra(mc, base, ttl):
    infra = list(base)  # the cluster's own domain: NS, every node's name and service name
    for n, d in sorted(mc["nodes"].items()):
        infra.append([n, ttl, "A", d["ip"]])
        if d.get("service_ip"):
            infra.append([f"{n}-svc", ttl, "A", d["service_ip"]])
    return infra


def _host_a(mc, owner, node, live, svc_ips, ttl):
    """A records of a mail host name: a live node's own service IP; a withdrawn node's name
    (and the round robin, ``node`` None) follow the live ones."""
    targets = [mc["nodes"][node]["service_ip"]] if node in live else svc_ips
    return [[owner, ttl, "A", ip] for ip in targets]


def failover_names(_mc=None):
    """
    ``{zone: [owner, ...]}``: the names whose A records follow the withdrawn set (a node is
    failed over when its service IP is in none of them): the round robin and the MX hosts.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_dns.failover_names
    """
    mc = _mc or _cluster()
    names = __salt__["mailcluster_records.mail_names"](_mc=mc)
    mail_nodes = _nodes_with("mail", mc)
    if names["layout"] == "cluster":
        return {names["zone"]: [names["rr"]] + [f"{n}.{names['rr']}" for n in mail_nodes]}
    return {d: [names["rr"], *mail_nodes] for d in _served_domains(mc)}


def _served_domains(mc):
    return [d for d, c in sorted((mc.get("domains") or {}).items()) if not (c or {}).get("absent")]


def _zone_text(zone, records, serial):
    p = _dns_params()
    mc = _cluster()
    primary = _nodes_with("dns_primary", mc)
    mname = f"{primary[0]}.{mc['cluster']['domain']}." if primary else f"ns.{zone}."
    lines = [
        f"; zone {zone}: written by salt (mailcluster_dns.dns_sync), do not edit",
        f"$ORIGIN {zone}.",
        f"$TTL {p['ttl']}",
        f"@ {p['ttl']} IN SOA {mname} {p['hostmaster']}.{zone}. "
        f"( {serial} {p['refresh']} {p['retry']} {p['expire']} {p['minimum']} )",
    ]
    lines += [f"{n} {ttl} IN {t} {d}" for n, ttl, t, d in records]
    return "\n".join(lines) + "\n"


def _zone_set(zone, text=None, path=None):
    """(serial, set of records) of a zone parsed by dnspython, SOA left out."""
    origin = dns.name.from_text(zone)
    if path:
        z = dns.zone.from_file(path, origin=origin, relativize=True, check_origin=False)
    else:
        z = dns.zone.from_text(text, origin=origin, relativize=True, check_origin=False)
    serial = 0
    recs = set()
    for name, ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "SOA":
            serial = rdata.serial
            # everything of the SOA but its serial is content
            soa = (
                rdata.mname,
                rdata.rname,
                rdata.refresh,
                rdata.retry,
                rdata.expire,
                rdata.minimum,
            )
            recs.add((name.to_text(), ttl, rtype, " ".join(str(v) for v in soa)))
            continue
        recs.add((name.to_text(), ttl, rtype, rdata.to_text()))
    return serial, recs


def _next_serial(old):
    today = int(datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")) * 100
    return max(int(old) + 1, today)


def soa_serial(zone, server="127.0.0.1", timeout=1.0):
    """
    The SOA serial ``server`` serves for ``zone``; None when it does not answer with one
    (the failover runner asks a DNS secondary this about the primary: one witness of its loss).

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster_dns.soa_serial example.test server=10.88.0.21
    """
    query = dns.message.make_query(zone, "SOA")
    try:
        resp = dns.query.udp(query, server, timeout=float(timeout))
    except Exception:  # pylint: disable=broad-except
        return None
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def _serial_floors(plan, serial_floor):
    """
    Raise the planned serials above what must not be undercut: ``serial_floor`` (given by the
    failover runner: the serials an acting primary served) and, for a zone being written, the
    serial this node's BIND serves now (a secondary promoted to primary serves the copy it
    transferred; its secondaries only follow a higher serial). A zone at or under its floor
    is rewritten even when its records match.
    """
    for zone, step in plan.items():
        floor = int((serial_floor or {}).get(zone) or 0)
        if step["action"] == "cache":
            if step["serial"] > floor:
                continue
            step.update(action="update", old_serial=step["serial"])
        # only for a zone being written: one local query, never on a no-change run
        floor = max(floor, soa_serial(zone, timeout=0.5) or 0)
        step["serial"] = max(step["serial"], floor + 1)
    return plan


def _rndc(*args):
    res = __salt__["cmd.run_all"](["rndc", *args], python_shell=False, ignore_retcode=True)
    return res["retcode"] == 0, (res["stdout"] + res["stderr"]).strip()


def _merge_journal(zone, path, wait=3.0):
    """
    Have BIND write the dynamic updates of its journal into the zone file and drop the journal
    (``rndc sync -clean``). BIND may write the file after rndc has returned: wait, at most
    ``wait`` seconds, until the file carries the serial BIND serves, so that what is compared
    with pillar is what BIND serves.
    """
    merged, _ = _rndc("sync", "-clean", zone)
    if not merged:
        return  # BIND does not serve the zone as a primary from this file
    served = soa_serial(zone, timeout=0.5)
    deadline = time.monotonic() + float(wait)
    while served is not None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if _zone_set(zone, path=path)[0] >= served:
                return
        time.sleep(0.05)


def _check_zone(zone, path):
    res = __salt__["cmd.run_all"](
        ["named-checkzone", "-q", zone, path], python_shell=False, ignore_retcode=True
    )
    return res["retcode"] == 0, (res["stdout"] + res["stderr"]).strip()


def _read_cache(path):
    """The cache of what was last written (``{}`` when unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def dns_plan(directory="/var/lib/bind/mailcluster", serial_floor=None):
    """
    Which zone files under ``directory`` differ from pillar, with their next serial. A zone is
    unchanged when its records (not its formatting or serial) equal the computed ones; a cache
    of what was last written keeps this a ``stat`` per zone. ``serial_floor`` (``{zone:
    serial}``): zones whose serial is not above it are rewritten with a higher one.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_dns.dns_plan
    """
    return _plan(zones(), directory, serial_floor)


def _plan(wanted, directory, serial_floor):
    """:py:func:`dns_plan` for the zones ``wanted`` (computed once by the caller)."""
    cache = _read_cache(os.path.join(directory, CACHE_FILE))
    plan = {}
    for zone, records in sorted(wanted.items()):
        text = _zone_text(zone, records, 0)  # serial 0: the digest covers all but the serial
        digest = hashlib.sha256(text.encode()).hexdigest()
        path = os.path.join(directory, f"db.{zone}")
        try:
            st = os.stat(path)
        except OSError:
            st = None
        jnl = path + ".jnl"
        if st and os.path.exists(jnl):
            # merge pending dynamic updates into the file before comparing
            _merge_journal(zone, path)
            st = os.stat(path)
        hit = cache.get(zone)
        if (
            st
            and hit
            and hit["hash"] == digest
            and hit["mtime"] == st.st_mtime
            and hit["size"] == st.st_size
            and not os.path.exists(jnl)
            and zone not in (serial_floor or {})
        ):
            continue
        try:
            _, want_set = _zone_set(zone, text=text)
        except Exception:  # pylint: disable=broad-except
            want_set = None  # let named-checkzone report it

        old_serial = 0
        if st:
            try:
                old_serial, have_set = _zone_set(zone, path=path)
            except Exception as exc:  # pylint: disable=broad-except
                log.warning("zone %s: cannot parse %s: %s", zone, path, exc)
                have_set = None
            # a journal BIND could not merge (it does not serve the zone as a primary here)
            # belongs to an older file: the zone is written again, the journal dropped
            if have_set == want_set and not os.path.exists(jnl):
                plan[zone] = {"action": "cache", "hash": digest, "serial": old_serial}
                continue
        plan[zone] = {
            "action": "update" if st else "create",
            "hash": digest,
            "serial": _next_serial(old_serial),
            "old_serial": old_serial,
        }
    return _serial_floors(plan, serial_floor)


def dns_sync(directory="/var/lib/bind/mailcluster", test=False, serial_floor=None):
    """
    Write the zone files that differ from pillar (see :py:func:`dns_plan`). A zone BIND already
    serves is frozen (``rndc freeze``: journal merged into the file, updates paused), rewritten
    after ``named-checkzone`` passed on the new text, and thawed, so dynamic updates and
    highstate never write the file at the same time. Returns ``{"changed": {...}, "errors":
    {...}}``. ``serial_floor``: see :py:func:`dns_plan`.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_dns.dns_sync test=True
    """
    wanted = zones()
    plan = _plan(wanted, directory, serial_floor)
    changed, errors = {}, {}
    if test:
        return {
            "changed": {z: p for z, p in plan.items() if p["action"] != "cache"},
            "errors": errors,
        }
    os.makedirs(directory, exist_ok=True)
    cache_path = os.path.join(directory, CACHE_FILE)
    cache = _read_cache(cache_path)
    try:
        import pwd  # pylint: disable=import-outside-toplevel

        bind_ids = pwd.getpwnam("bind")[2:4]
    except (ImportError, KeyError):
        bind_ids = None
    for zone, step in plan.items():
        path = os.path.join(directory, f"db.{zone}")
        if step["action"] != "cache":
            frozen, _ = _rndc("freeze", zone) if step["action"] == "update" else (False, "")
            serial = step["serial"]
            if frozen:
                # the freeze may have merged a journal with a newer serial into the file
                with contextlib.suppress(Exception):
                    serial = max(serial, _next_serial(_zone_set(zone, path=path)[0]))
            text = _zone_text(zone, wanted[zone], serial)
            fd, tmp = tempfile.mkstemp(prefix=f".db.{zone}.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            ok, out = _check_zone(zone, tmp)
            if ok:
                os.chmod(tmp, 0o644)
                if bind_ids:
                    os.chown(tmp, *bind_ids)
                os.replace(tmp, path)
                # frozen: BIND merged the journal into the old file; not frozen: BIND does
                # not serve the zone as a dynamic primary here (a secondary being promoted
                # by the failover runner), and the journal of its last time as one does not
                # fit the new file: BIND would refuse the zone ("journal out of sync")
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + ".jnl")
                changed[zone] = {"old": step.get("old_serial") or None, "new": serial}
            else:
                os.remove(tmp)
                errors[zone] = out
            if frozen:
                _rndc("thaw", zone)
            if not ok:
                continue
        st = os.stat(path)
        cache[zone] = {"hash": step["hash"], "mtime": st.st_mtime, "size": st.st_size}
    for zone in [z for z in cache if z not in wanted]:
        del cache[zone]
    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(cache, fh)
    os.replace(tmp, cache_path)
    return {"changed": changed, "errors": errors}
