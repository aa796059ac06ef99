# ruff: noqa: F821  (Salt injects __opts__ and __salt__ into loader modules)
"""
A picture of the cluster, drawn from pillar and the live state (docs/diagram.md).

- :py:func:`model`: what is true now, as one JSON-able dict: the nodes of pillar (address,
  data centre, roles) and whether each answers the master; which node holds each service IP
  (the addresses the kernel of each node has: whatever moved them, heartbeat or another
  mover); what every DNS server answers for the mail names (CNAMEs followed to the final
  addresses); SOA serials per zone and server; MariaDB replication; the shared store; and the
  failover runner's own view (:py:func:`mailcluster_failover.status`, reused, not redone).
- :py:func:`source`: the model and the Graphviz DOT text drawn from it
  (``mailcluster_diagram_graph.build``, a pure function of the model).
- :py:func:`render`: SVG and PNG files written on the master; needs Graphviz's ``dot``
  there (Debian package ``graphviz``). ``lab/lab diagram`` renders :py:func:`source`'s DOT on
  the host instead.

Only reads: every minion call is bounded by a timeout and a node that does not answer is
drawn as down; no secret (TSIG key, DB passwords) enters the model.
"""

import os
import time

import dns.exception
import dns.resolver
import graphviz
import salt.utils.path
from salt.exceptions import CommandExecutionError

__virtualname__ = "mailcluster_diagram"

#: ``SHOW SLAVE STATUS`` fields drawn on the replication edge (no credentials among them)
REPLICA_FIELDS = (
    "Master_Host",
    "Slave_IO_Running",
    "Slave_SQL_Running",
    "Seconds_Behind_Master",
    "Gtid_IO_Pos",
    "Last_IO_Error",
    "Last_SQL_Error",
)


def __virtual__():
    needs = ("mcheal_ctx.context", "mailcluster_failover.status", "mailcluster_diagram_graph.build")
    for need in needs:
        if need not in __salt__:
            return (False, f"{need} is not available (dnspython, graphviz installed?)")
    return __virtualname__


# --------------------------------------------------------------------------- DNS answers
def _resolver(server, timeout):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [server]
    res.lifetime = timeout
    res.timeout = timeout
    return res


def _lookup(res, name, rdtype, hops=8):
    """``(records, cname chain)``; ``None`` records when the server gave no answer at all.
    The cluster's servers are authoritative only: for ``mail.<domain>`` they answer the CNAME
    into the cluster zone and stop there, so the chain is followed here, on the same server,
    as a resolver would."""
    chain = []
    for _ in range(hops):
        try:
            ans = res.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return [], chain
        except dns.exception.Timeout:
            return None, chain
        chain += [str(c.target).rstrip(".") for rr in ans.chaining_result.cnames for c in rr]
        if ans.rrset is not None or not chain or chain[-1] == name:
            return [r.to_text() for r in ans.rrset or []], chain
        name = chain[-1]
    return [], chain


def _dns_server(ip, domains, zones, timeout):
    """What one DNS server answers: the mail names of every domain (``mail.<domain>`` and
    its MX hosts) to their final addresses, and the SOA serial of every zone."""
    res = _resolver(ip, timeout)
    out = {"answers": {}, "serials": {}, "mx": {}, "answered": False}
    for zone in zones:
        soa, _ = _lookup(res, zone, "SOA")
        if soa is None:
            # silent for the first zone: not waiting for the others' timeouts too
            return out
        out["answered"] = True
        out["serials"][zone] = int(soa[0].split()[2]) if soa else None
    for domain in domains:
        mx, _ = _lookup(res, domain, "MX")
        hosts = sorted(r.split()[1].rstrip(".") for r in mx or [])
        out["mx"][domain] = hosts
        for name in [f"mail.{domain}", *hosts]:
            addrs, chain = _lookup(res, name, "A")
            out["answers"][name] = {"addresses": sorted(addrs or []), "cnames": chain}
    return out


# --------------------------------------------------------------------------- minion calls
def _ask(node, fun, timeout):
    answered, ret, ok = __salt__["mcheal_ctx.call"](node, fun, [], timeout=timeout)
    if not answered:
        return {"answered": False}
    return {"answered": True, "ok": bool(ok), "return": ret}


def _storage(ctx, live):
    storage = ctx.pillar.get("storage") or {}
    backend = storage.get("backend") or "shared_path"
    out = {"backend": backend, "nodes": ctx.with_role("storage"), "resources": {}}
    if backend == "shared_path":
        out["source"] = (storage.get("shared_path") or {}).get("source")
    else:
        for node in out["nodes"]:
            ret = live.get(("drbd.status", node)) or {}
            out["resources"][node] = ret.get("return") if ret.get("ok") else None
    return out


def _replica(ret):
    if not ret or not ret.get("answered"):
        return {"answered": False}
    if not ret.get("ok") or not isinstance(ret.get("return"), dict):
        return {"answered": True, "error": str(ret.get("return"))[:200]}
    return {"answered": True, **{k: ret["return"].get(k) for k in REPLICA_FIELDS}}


# --------------------------------------------------------------------------- entry points
def model():
    """
    What the cluster looks like now (pillar and live state), as a dict; only reads.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_diagram.model --out=json
    """
    t0 = time.monotonic()
    ctx = __salt__["mcheal_ctx.context"](__salt__["mcheal_ctx.compile_pillar"]())
    status = __salt__["mailcluster_failover.status"]()
    storage_backend = (ctx.pillar.get("storage") or {}).get("backend") or "shared_path"
    calls = [(n, "network.ip_addrs", 3.0) for n in sorted(ctx.nodes)]
    calls += [(n, "mailcluster_db.replica_status", 4.0) for n in ctx.with_role("db_replica")]
    if storage_backend == "drbd_ocfs2":
        calls += [(n, "drbd.status", 4.0) for n in ctx.with_role("storage")]
    live = {}
    domains = sorted(ctx.mc.get("domains") or {})
    # every zone the picture shows a serial for: the failover's (the cluster zone, layout
    # cluster) and each domain's own, which a failover leaves alone
    zones = sorted(set(__salt__["mcheal_dns.desired"](ctx, set())) | set(domains))
    dns_nodes = ctx.with_role("dns_primary") + ctx.dns_secondary_ids
    dns_seen = {}

    def minion(node, fun, timeout):
        live[(fun, node)] = _ask(node, fun, timeout)

    def dns_look(node):
        dns_seen[node] = _dns_server(ctx.nodes[node]["ip"], domains, zones, 1.0)

    __salt__["mcheal_ctx.parallel"](
        *(lambda c=c: minion(*c) for c in calls),
        *(lambda n=n: dns_look(n) for n in dns_nodes),
    )
    nodes = {}
    for name, data in sorted(ctx.nodes.items()):
        addrs = live[("network.ip_addrs", name)]
        nodes[name] = {
            "ip": data.get("ip"),
            "service_ip": data.get("service_ip"),
            "dc": data.get("dc"),
            "roles": list(data.get("roles") or []),
            "answers": bool(addrs.get("answered") and addrs.get("ok")),
            "addresses": sorted(addrs.get("return") or []) if addrs.get("ok") else [],
        }
    service_ips = {
        d["service_ip"]: {
            "home": n,
            "holders": sorted(h for h, hd in nodes.items() if d["service_ip"] in hd["addresses"]),
        }
        for n, d in nodes.items()
        if d["service_ip"]
    }
    return {
        "cluster": {k: (ctx.mc.get("cluster") or {}).get(k) for k in ("name", "domain")},
        "datacentres": {
            dc: (d or {}).get("description") for dc, d in (ctx.mc.get("datacentres") or {}).items()
        },
        "nodes": nodes,
        "service_ips": service_ips,
        "dns": {
            "primary": ctx.pillar_primary_id,
            "acting": (status.get("dns_acting") or {}).get("node"),
            "withdrawn": status.get("withdrawn"),
            "errors": status.get("dns_errors") or {},
            "domains": domains,
            "servers": dns_seen,
        },
        "db": {
            "primary": (ctx.with_role("db_primary") or [None])[0],
            "replicas": {
                n: _replica(live.get(("mailcluster_db.replica_status", n)))
                for n in ctx.with_role("db_replica")
            },
        },
        "storage": _storage(ctx, live),
        "taken": {"at": round(time.time(), 3), "seconds": round(time.monotonic() - t0, 3)},
    }


def source():
    """
    The model (:py:func:`model`) and the Graphviz DOT text drawn from it.

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_diagram.source --out=json
    """
    data = model()
    return {"model": data, "dot": __salt__["mailcluster_diagram_graph.build"](data).source}


def render(out=None, formats="svg,png"):
    """
    Draw the cluster into ``out`` (default ``<cachedir>/mailcluster_diagram``) as
    ``cluster.<format>`` for each of ``formats``, plus ``cluster.dot``; needs Graphviz's
    ``dot`` on the master (Debian package ``graphviz``).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_diagram.render out=/srv/www/cluster formats=svg,png
    """
    if not salt.utils.path.which("dot"):
        raise CommandExecutionError(
            "dot not found on the master: install the graphviz package "
            "(or draw on another machine from `salt-run mailcluster_diagram.source`)"
        )
    out = out or os.path.join(__opts__["cachedir"], "mailcluster_diagram")
    os.makedirs(out, exist_ok=True)
    graph = __salt__["mailcluster_diagram_graph.build"](model())
    written = {}
    for fmt in ["dot", *(f.strip() for f in str(formats).split(",") if f.strip())]:
        path = os.path.join(out, f"cluster.{fmt}")
        try:
            data = graph.source.encode() if fmt == "dot" else graph.pipe(format=fmt)
        except graphviz.CalledProcessError as exc:
            raise CommandExecutionError(f"{' '.join(exc.cmd)} failed: {exc.stderr!r}") from exc
        with open(path, "wb") as fh:
            fh.write(data)
        written[fmt] = {"path": path, "bytes": len(data)}
    return written
