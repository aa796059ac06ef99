"""
Parse what the OCFS2 tools say (``o2cb``, ``mounted.ocfs2``, ``blkid -p``) and the o2cb
timeouts file (``/etc/default/o2cb``).

Pure functions over text (no command runs here, no file is read): the ``o2cb`` execution
module runs the tools, reads the file and hands the text to these through ``__salt__``
(``o2cb_parse.nodes`` and so on); the unit tests feed them the real outputs of ocfs2-tools
1.8.7 recorded under ``tests/fixtures/``. Needs nothing, so it loads everywhere.

Quirks handled here: ``o2cb`` reports many errors while exiting 0 (:py:func:`errors` finds
them); without a cluster stack ``cluster-status`` and ``mounted.ocfs2`` print their output
several times when it is not a terminal, so the parsers dedupe.
"""

import re

__virtualname__ = "o2cb_parse"

# /etc/default/o2cb: our key -> (the file's variable, o2cb's default where it is unset)
_TIMEOUT_KEYS = {
    "dead_threshold": ("O2CB_HEARTBEAT_THRESHOLD", 31),
    "idle_timeout_ms": ("O2CB_IDLE_TIMEOUT_MS", 30000),
    "keepalive_delay_ms": ("O2CB_KEEPALIVE_DELAY_MS", 2000),
    "reconnect_delay_ms": ("O2CB_RECONNECT_DELAY_MS", 2000),
}


def __virtual__():
    return __virtualname__


def errors(text):
    """
    Return the lines where o2cb reports an error (it often exits 0 after them): every line
    starting with ``o2cb:`` but the harmless "Unable to access cluster service".

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.errors "$(o2cb list-cluster nosuch 2>&1)"
    """
    return [
        line.strip()
        for line in (text or "").splitlines()
        if line.startswith("o2cb:") and "Unable to access cluster service" not in line
    ]


def _stanzas(text):
    """Parse ``name:`` + tab-indented ``key = value`` stanzas into a list of (kind, dict)."""
    stanzas = []
    current = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if not line[0].isspace() and line.rstrip().endswith(":"):
            current = {}
            stanzas.append((line.strip()[:-1], current))
            continue
        if current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return stanzas


def _node_entry(values):
    return {
        "number": int(values["number"]) if values.get("number", "").isdigit() else None,
        "ip_address": values.get("ip_address"),
        "ip_port": int(values["ip_port"]) if values.get("ip_port", "").isdigit() else None,
    }


def nodes(text):
    """
    Parse ``o2cb list-nodes`` (or cluster.conf itself): ``{"node1": {"number": 1,
    "ip_address": "10.99.0.1", "ip_port": 7777}}``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.nodes "$(o2cb list-nodes mail)"
    """
    return {
        values["name"]: _node_entry(values)
        for kind, values in _stanzas(text)
        if kind == "node" and "name" in values
    }


def cluster(text):
    """
    Parse ``o2cb list-cluster NAME``: ``{"name", "heartbeat_mode", "node_count", "nodes"}``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.cluster "$(o2cb list-cluster mail)"
    """
    out = {"name": None, "heartbeat_mode": None, "node_count": 0, "nodes": nodes(text)}
    for kind, values in _stanzas(text):
        if kind == "cluster":
            out["name"] = values.get("name")
            out["heartbeat_mode"] = values.get("heartbeat_mode", "local")
            count = values.get("node_count", "0")
            out["node_count"] = int(count) if count.isdigit() else 0
    return out


def list_clusters(text):
    """
    Parse ``o2cb list-clusters``: the sorted cluster names.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.list_clusters "$(o2cb list-clusters)"
    """
    return sorted({line.strip() for line in text.splitlines() if line.strip()})


def cluster_status(text):
    """
    Parse ``o2cb cluster-status``: ``Cluster 'NAME' is online`` -> ``("NAME", True)``;
    ``offline`` -> ``(None, False)``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.cluster_status "$(o2cb cluster-status mail)"
    """
    for line in text.splitlines():
        match = re.match(r"Cluster '([^']+)' is (online|offline)", line.strip())
        if match:
            return match.group(1), match.group(2) == "online"
    return None, False


def _columns(header):
    return [(match.group(0), match.start()) for match in re.finditer(r"\S+", header)]


def _table(text):
    """Parse a ``mounted.ocfs2 -d`` or ``-f`` table into ``{device: {column: value}}``."""
    rows = {}
    cols = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("Device"):
            cols = _columns(line)
            continue
        if cols is None:
            continue
        values = {}
        for idx, (name, start) in enumerate(cols):
            end = cols[idx + 1][1] if idx + 1 < len(cols) else None
            values[name] = line[start:end].strip() if end else line[start:].strip()
        # the first column may overflow into the next when a device name is long
        device = line.split()[0]
        values["Device"] = device
        rows[device] = values
    return rows


def mounted(text_d, text_f):
    """
    Combine ``mounted.ocfs2 -d`` and ``-f`` into ``{device: {"stack", "cluster", "flags",
    "uuid", "label", "nodes"}}`` (``nodes`` empty when no node mounts the volume).

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.mounted "$(mounted.ocfs2 -d)" "$(mounted.ocfs2 -f)"
    """
    detected = _table(text_d)
    by_device = _table(text_f)
    out = {}
    for device, row in detected.items():
        raw_nodes = by_device.get(device, {}).get("Nodes", "")
        if raw_nodes in ("", "Not mounted"):
            mounted_on = []
        else:
            mounted_on = [item.strip() for item in raw_nodes.split(",") if item.strip()]
        out[device] = {
            "stack": row.get("Stack") or None,
            "cluster": row.get("Cluster") or None,
            "flags": row.get("F") or "",
            "uuid": row.get("UUID") or None,
            "label": row.get("Label") or None,
            "nodes": mounted_on,
        }
    return out


def blkid(text):
    """
    Parse a ``blkid -p`` line: ``/dev/drbd0: LABEL="x" UUID="y" TYPE="ocfs2"`` ->
    ``{"LABEL": "x", "UUID": "y", "TYPE": "ocfs2"}``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.blkid "$(blkid -p /dev/drbd0)"
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    return dict(re.findall(r'(\w+)="([^"]*)"', line))


def defaults(text):
    """
    Parse a shell ``KEY=value`` file (``/etc/default/o2cb``) into ``{KEY: value}``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.defaults "$(cat /etc/default/o2cb)"
    """
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def timeouts(text):
    """
    Return the timeouts that ``/etc/default/o2cb`` (its ``text``) sets, o2cb's defaults
    where unset: ``{"dead_threshold": 31, "idle_timeout_ms": 30000, "keepalive_delay_ms":
    2000, "reconnect_delay_ms": 2000}``.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.timeouts "$(cat /etc/default/o2cb)"
    """
    values = defaults(text)
    out = {}
    for key, (var, default) in _TIMEOUT_KEYS.items():
        raw = values.get(var, "")
        out[key] = int(raw) if raw.isdigit() else default
    return out


def timeout_changes(text, wanted):
    """
    Compare the timeouts ``text`` sets with ``wanted`` (``{key: value or None}``, None:
    leave it). Returns ``{"changes": {key: {"old", "new"}}, "updates": {VAR: value}}``:
    ``updates`` also writes a value that equals o2cb's default but is not in the file yet.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.timeout_changes "$(cat /etc/default/o2cb)" '{dead_threshold: 11}'
    """
    current = timeouts(text)
    explicit = defaults(text)
    changes = {}
    updates = {}
    for key, value in wanted.items():
        if value is None:
            continue
        var = _TIMEOUT_KEYS[key][0]
        if current[key] != int(value) or var not in explicit:
            updates[var] = int(value)
            if current[key] != int(value):
                changes[key] = {"old": current[key], "new": int(value)}
    return {"changes": changes, "updates": updates}


def render_defaults(text, updates):
    """
    Return ``text`` with ``updates`` (``{VAR: value}``) set, keeping every other line;
    variables not in the file yet are appended.

    CLI Example:

    .. code-block:: bash

        salt-call o2cb_parse.render_defaults "$(cat /etc/default/o2cb)" \\
            '{O2CB_HEARTBEAT_THRESHOLD: 11}'
    """
    lines = text.splitlines()
    seen = set()
    for idx, line in enumerate(lines):
        match = re.match(r"\s*([A-Z0-9_]+)\s*=", line)
        if match and match.group(1) in updates:
            var = match.group(1)
            lines[idx] = f"{var}={updates[var]}"
            seen.add(var)
    for var, value in updates.items():
        if var not in seen:
            lines.append(f"{var}={value}")
    return "\n".join(lines) + "\n"
