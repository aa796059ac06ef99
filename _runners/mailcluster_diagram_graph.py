"""
The picture of the cluster as a Graphviz graph: a pure function of the model that
``mailcluster_diagram.model`` collects (docs/diagram.md). No Salt call, no network, no file:
unit-tested from a model recorded in the lab (tests/fixtures/diagram/).

What is drawn, and how a failure shows:

- one box per data centre (``cluster_<dc>``), the nodes without one outside; a node names its
  address and roles; a node that does not answer the master is grey and dashed (class
  ``down``);
- every service IP is an ellipse with an edge to the node that holds it now; an IP held by
  another node than its own (taken over) is red and bold (class ``takeover``), an IP that no
  node holds is red and dashed (class ``unheld``);
- the DNS answers: one note per mail name with an edge to each address it resolves to,
  labelled with the servers that gave that answer (CNAMEs followed, and named);
- replication: MariaDB primary -> replica (IO/SQL threads, lag), BIND primary -> secondary
  (serial per zone on both), the mail pair's store (shared_path or DRBD); green when healthy,
  red when not (class ``broken``).

SVG ids are stable (``node-<name>``, ``ip-<address>``, ``hold-<address>``, ``name-<dns name>``,
``answer-<name>-<address>``, ``repl-db-<replica>``, ``repl-dns-<secondary>``, ``store``) so a
test or a page can find each element.
"""

import graphviz

__virtualname__ = "mailcluster_diagram_graph"

OK, BAD, DOWN = "#2e7d32", "#c62828", "#9e9e9e"
HIDDEN_ROLES = {"common"}


def __virtual__():
    return __virtualname__


def _node_label(name, node):
    roles = ", ".join(r for r in node["roles"] if r not in HIDDEN_ROLES)
    lines = [name, node["ip"] or "", roles]
    if not node["answers"]:
        lines.append("DOWN (no answer to the master)")
    return "\n".join(lines)


def _nodes(graph, model):
    by_dc = {}
    for name, node in model["nodes"].items():
        by_dc.setdefault(node.get("dc"), []).append(name)
    for dc in sorted(by_dc, key=lambda d: (d is None, d or "")):
        if dc is None:
            _draw_nodes(graph, model, by_dc[dc])
            continue
        with graph.subgraph(name=f"cluster_{dc}") as sub:
            desc = model["datacentres"].get(dc)
            label = f"{dc}: {desc}" if desc else dc
            sub.attr(label=label, style="rounded", color="#607d8b", fontcolor="black")
            _draw_nodes(sub, model, by_dc[dc])


def _draw_nodes(graph, model, names):
    for name in sorted(names):
        node = model["nodes"][name]
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": "#e3f2fd"}
        if not node["answers"]:
            attrs.update(style="rounded,dashed,filled", fillcolor="#eeeeee", color=DOWN)
            attrs.update(fontcolor="#757575", **{"class": "down"})
        graph.node(name, _node_label(name, node), id=f"node-{name}", **attrs)
        ip = node.get("service_ip")
        if ip:
            _service_ip(graph, model, ip)


def _service_ip(graph, model, ip):
    entry = model["service_ips"][ip]
    home, holders = entry["home"], entry["holders"]
    label = f"{ip}\nservice IP of {home}"
    attrs = {"shape": "ellipse", "style": "filled", "fillcolor": "#fff8e1"}
    if not holders:
        attrs.update(color=BAD, style="dashed,filled", fillcolor="#ffebee", **{"class": "unheld"})
        label += "\nheld by no node"
    elif holders != [home]:
        attrs.update(color=BAD, penwidth="2.5", fillcolor="#ffcdd2", **{"class": "takeover"})
        label += f"\nTAKEN OVER by {', '.join(h for h in holders if h != home)}"
    graph.node(f"ip {ip}", label, id=f"ip-{ip}", **attrs)
    for holder in holders:
        moved = holder != home
        graph.edge(
            f"ip {ip}",
            holder,
            id=f"hold-{ip}-{holder}",
            label="taken over" if moved else "held",
            color=BAD if moved else OK,
            penwidth="2.5" if moved else "1",
            **({"class": "takeover"} if moved else {}),
        )


def _dns(graph, model):
    dns = model["dns"]
    servers = dns["servers"]
    answers = {}  # name -> {address: [servers]}, cnames
    for server in sorted(servers):
        for name, got in servers[server]["answers"].items():
            entry = answers.setdefault(name, {"to": {}, "cnames": got["cnames"]})
            for addr in got["addresses"]:
                entry["to"].setdefault(addr, []).append(server)
    with graph.subgraph(name="cluster_dns_answers") as sub:
        silent = sorted(s for s, v in servers.items() if not v["answered"])
        label = "what DNS answers now"
        if dns.get("acting"):
            label += f" (DNS primary: {dns['acting']} standing in for {dns['primary']})"
        if silent:
            label += f" (no answer from {', '.join(silent)})"
        sub.attr(label=label, style="dashed", color="#8d6e63", fontcolor="black")
        for name in sorted(answers):
            entry = answers[name]
            text = "\n".join([name, *(f"-> {c}" for c in entry["cnames"])])
            if not entry["to"]:
                text += "\n(no address)"
            attrs = {"shape": "note", "style": "filled", "fillcolor": "#efebe9"}
            sub.node(f"name {name}", text, id=f"name-{name}", **attrs)
    known = {ip for ip in model["service_ips"]}
    known |= {n["ip"] for n in model["nodes"].values()}
    for name, entry in sorted(answers.items()):
        for addr, by in sorted(entry["to"].items()):
            if addr not in known:
                graph.node(f"ip {addr}", addr, shape="ellipse", id=f"ip-{addr}")
            graph.edge(
                f"name {name}",
                f"ip {addr}",
                id=f"answer-{name}-{addr}",
                label=", ".join(by),
                color="#8d6e63",
                style="dashed",
                fontsize="9",
            )


def _edge(graph, tail, head, eid, label, ok, **attrs):
    extra = {} if ok else {"class": "broken"}
    graph.edge(tail, head, id=eid, label=label, color=OK if ok else BAD, **extra, **attrs)


def _db(graph, model):
    primary = model["db"]["primary"]
    for replica, st in sorted(model["db"]["replicas"].items()):
        if not primary:
            continue
        if not st.get("answered"):
            _edge(graph, primary, replica, f"repl-db-{replica}", "MariaDB: replica silent", False)
            continue
        if st.get("error"):
            label, ok = f"MariaDB: {st['error'][:60]}", False
        else:
            io, sql = st.get("Slave_IO_Running"), st.get("Slave_SQL_Running")
            lag = st.get("Seconds_Behind_Master")
            ok = io == "Yes" and sql == "Yes"
            label = f"MariaDB GTID\nIO {io}, SQL {sql}\n{lag} s behind"
            err = st.get("Last_IO_Error") or st.get("Last_SQL_Error")
            if err:
                label += f"\n{err[:60]}"
        _edge(graph, primary, replica, f"repl-db-{replica}", label, ok, penwidth="1.5")


def _bind(graph, model):
    dns = model["dns"]
    primary = dns.get("acting") or dns["primary"]
    servers = dns["servers"]
    if not primary or primary not in servers:
        return
    source = servers[primary]["serials"]
    for sec in sorted(s for s in servers if s != primary):
        seen = servers[sec]["serials"]
        lines, ok = ["BIND NOTIFY/IXFR"], servers[sec]["answered"]
        for zone in sorted(set(source) | set(seen)):
            a, b = source.get(zone), seen.get(zone)
            ok = ok and a is not None and a == b
            lines.append(f"{zone} {a} {'=' if a == b else '!='} {b}")
        _edge(graph, primary, sec, f"repl-dns-{sec}", "\n".join(lines), ok, fontsize="9")


def _store(graph, model):
    st = model["storage"]
    nodes = st["nodes"]
    if len(nodes) != 2:
        return
    up = all(model["nodes"][n]["answers"] for n in nodes)
    if st["backend"] == "shared_path":
        label = "\n".join(["store: shared_path", *([st["source"]] if st.get("source") else [])])
        ok = up
    else:
        parts, ok = [], up
        for node in nodes:
            for res, info in sorted((st["resources"].get(node) or {}).items()):
                disks = "/".join(v.get("disk", "?") for v in info.get("volumes") or [])
                parts.append(f"{node} {res}: {info.get('role')} {disks}")
                ok = ok and info.get("role") == "Primary" and disks == "UpToDate"
            if st["resources"].get(node) is None:
                parts.append(f"{node}: no answer")
                ok = False
        label = "store: DRBD + OCFS2\n" + "\n".join(parts)
    _edge(graph, nodes[0], nodes[1], "store", label, ok, dir="both", style="bold", fontsize="9")


def _title(model):
    down = sorted(n for n, d in model["nodes"].items() if not d["answers"])
    moved = sorted(
        f"{ip} on {', '.join(e['holders']) or 'no node'}"
        for ip, e in model["service_ips"].items()
        if e["holders"] != [e["home"]]
    )
    name = model["cluster"].get("name") or "cluster"
    if not down and not moved and not model["dns"].get("withdrawn"):
        return f"{name}: healthy", False
    parts = [f"{', '.join(down)} down"] if down else []
    parts += moved
    if model["dns"].get("withdrawn"):
        parts.append(f"withdrawn from DNS: {', '.join(model['dns']['withdrawn'])}")
    return f"{name}: DEGRADED: " + "; ".join(parts), True


def build(model):
    """
    Building block of mailcluster_diagram: the :py:class:`graphviz.Digraph` of ``model``
    (``mailcluster_diagram.model``'s dict).

    CLI Example:

    .. code-block:: bash

        salt-run mailcluster_diagram.source
    """
    title, degraded = _title(model)
    graph = graphviz.Digraph("mailcluster", comment=title)
    graph.attr(label=title, labelloc="t", fontsize="18", rankdir="LR", fontname="Helvetica")
    graph.attr(fontcolor=BAD if degraded else OK, newrank="true")
    graph.attr(**{"class": "degraded" if degraded else "healthy"})
    graph.attr("node", fontname="Helvetica", fontsize="11")
    graph.attr("edge", fontname="Helvetica", fontsize="10")
    _nodes(graph, model)
    _dns(graph, model)
    _db(graph, model)
    _bind(graph, model)
    _store(graph, model)
    return graph
