"""
What this node's BIND configuration declares now (``/etc/bind/named.conf.local``, written by
the dns role), for the secondaries' refresh after a change of it (issue 14.2): asking the
primary again for every zone at every change was 10,000 ``rndc refresh`` calls for one added
domain at 10,000 domains. Only a zone turned (back) into a secondary, or given another primary,
needs it (a zone this node served as the acting primary, docs/selfheal.md); a new zone is
transferred when BIND loads it.
"""

import re

__virtualname__ = "mailcluster_bind"

ZONE_RE = re.compile(r'^zone "(?P<zone>[^"]+)" \{(?P<body>.*?)^\};', re.M | re.S)
TYPE_RE = re.compile(r"^\s*type (\w+);", re.M)
PRIMARIES_RE = re.compile(r"^\s*primaries \{([^}]*)\};", re.M)


def __virtual__():
    return __virtualname__


def parse(text):
    """
    ``{zone: {"type": ..., "primaries": [address, ...]}}`` of a ``named.conf.local`` as the
    dns role writes it (salt/dns/files/named.conf.local.jinja).

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster_bind.parse "$(cat /etc/bind/named.conf.local)"
    """
    out = {}
    for match in ZONE_RE.finditer(text or ""):
        body = match.group("body")
        kind = TYPE_RE.search(body)
        prim = PRIMARIES_RE.search(body)
        out[match.group("zone")] = {
            "type": kind.group(1) if kind else None,
            "primaries": [p.strip() for p in prim.group(1).split(";") if p.strip()] if prim else [],
        }
    return out


def to_refresh(zones, primary_ip, path="/etc/bind/named.conf.local"):
    """
    The zones of ``zones`` that the configuration at ``path`` declares now as anything but
    a secondary of ``primary_ip``: the ones to ask the primary for at once after the
    configuration has made them so (a missing or unreadable file: none, every zone is new).

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster_bind.to_refresh '[example.test]' 10.88.0.21
    """
    try:
        with open(path, encoding="utf-8") as fh:
            now = parse(fh.read())
    except OSError:
        return []
    want = {"type": "secondary", "primaries": [primary_ip]}
    return [z for z in zones if z in now and now[z] != want]
