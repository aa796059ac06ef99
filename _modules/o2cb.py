"""
Manage the OCFS2 o2cb cluster stack with the ``o2cb`` tool (ocfs2-tools).

Salt 3008 ships no module for it. Everything goes through ``o2cb`` (which edits
``/etc/ocfs2/cluster.conf`` and talks to configfs) and ``mounted.ocfs2``; the timeouts live
in ``/etc/default/o2cb``.

:depends: ocfs2-tools (``o2cb``, ``mounted.ocfs2``, ``mkfs.ocfs2``)

The tools' output and the timeouts file are parsed by ``_modules/o2cb_parse.py``, which this
module reaches through ``__salt__``.

Quirks handled here (measured on ocfs2-tools 1.8.7):

- ``o2cb`` reports many errors (``Unknown cluster 'x'``, ``Cluster 'x' already exists``)
  on its output while exiting 0: any line starting with ``o2cb:`` is an error.
- ``add-node`` without ``--number`` writes ``number = 0``: :py:func:`add_node` always
  passes an explicit number.
- Without a cluster stack ``cluster-status`` and ``mounted.ocfs2`` print their output
  several times when it is not a terminal (fork with unflushed stdio): parsers dedupe.
"""

import logging
import os

import salt.utils.files
import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "o2cb"

DEFAULT_CONF = "/etc/ocfs2/cluster.conf"
DEFAULTS_FILE = "/etc/default/o2cb"


def __virtual__():
    if salt.utils.path.which("o2cb") is None:
        return (False, "o2cb not found: install ocfs2-tools")
    if "o2cb_parse.nodes" not in __salt__:
        return (False, "o2cb needs o2cb_parse (module not loaded)")
    return __virtualname__


# ---------------------------------------------------------------------------
# Command helpers
# ---------------------------------------------------------------------------


def _o2cb(args, config_file=None, ok_retcodes=(0,)):
    cmd = ["o2cb"]
    if config_file:
        cmd.append(f"--config-file={config_file}")
    cmd.extend(args)
    return _run(cmd, ok_retcodes=ok_retcodes, check_o2cb_errors=True)


def _run(cmd, ok_retcodes=(0,), check_o2cb_errors=False):
    res = __salt__["cmd.run_all"](
        cmd, python_shell=False, ignore_retcode=True, output_loglevel="debug"
    )
    combined = f"{res.get('stdout', '')}\n{res.get('stderr', '')}"
    errors = __salt__["o2cb_parse.errors"](combined) if check_o2cb_errors else []
    if res["retcode"] not in ok_retcodes or errors:
        message = "; ".join(errors) or (res.get("stderr") or res.get("stdout") or "").strip()
        raise CommandExecutionError(f"'{' '.join(cmd)}' failed (rc={res['retcode']}): {message}")
    return res


def _read(path):
    """The text of ``path``, empty when it does not exist (o2cb's defaults apply)."""
    if not os.path.exists(path):
        return ""
    with salt.utils.files.fopen(path, "r") as handle:
        return handle.read()


def _next_free_number(nodes, start=1):
    used = {entry["number"] for entry in nodes.values()}
    number = start
    while number in used:
        number += 1
    return number


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def list_clusters(config_file=None):
    """
    Return the cluster names defined in cluster.conf.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.list_clusters
    """
    return __salt__["o2cb_parse.list_clusters"](_o2cb(["list-clusters"], config_file)["stdout"])


def cluster_info(name, config_file=None):
    """
    Return one cluster from cluster.conf, or None when it is not defined::

        {"name": "mail", "heartbeat_mode": "local", "node_count": 2,
         "nodes": {"mx1": {"number": 1, "ip_address": "10.88.0.11", "ip_port": 7777}}}

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.cluster_info mail
    """
    if name not in list_clusters(config_file):
        return None
    return __salt__["o2cb_parse.cluster"](_o2cb(["list-cluster", name], config_file)["stdout"])


def list_nodes(cluster, config_file=None):
    """
    Return the nodes of ``cluster``:
    ``{"node1": {"number": 1, "ip_address": "10.99.0.1", "ip_port": 7777}, ...}``.

    An unknown cluster raises ``CommandExecutionError`` naming it.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.list_nodes mail
    """
    return __salt__["o2cb_parse.nodes"](_o2cb(["list-nodes", cluster], config_file)["stdout"])


def cluster_status(cluster=None, config_file=None):
    """
    Return whether the cluster is registered (online) in configfs:
    ``{"name": "mail", "online": True}``.

    Without a name, the registered cluster (if any) is reported. A named cluster that is
    offline and absent from cluster.conf raises ``CommandExecutionError``.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.cluster_status mail
    """
    args = ["cluster-status"] + ([cluster] if cluster else [])
    res = _o2cb(args, config_file, ok_retcodes=(0, 1))
    name, online = __salt__["o2cb_parse.cluster_status"](res["stdout"])
    if not online and cluster and cluster not in list_clusters(config_file):
        raise CommandExecutionError(f"O2CB cluster '{cluster}' is not defined in cluster.conf")
    return {"name": name or cluster, "online": online}


def add_cluster(name, config_file=None):
    """
    Add a cluster to cluster.conf. An existing one raises ``CommandExecutionError``.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.add_cluster mail
    """
    _o2cb(["add-cluster", name], config_file)
    return True


def remove_cluster(name, config_file=None):
    """
    Remove a cluster from cluster.conf.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.remove_cluster mail
    """
    _o2cb(["remove-cluster", name], config_file)
    return True


def add_node(cluster, node, ip, port=7777, number=None, config_file=None):
    """
    Add a node to ``cluster`` in cluster.conf, always with an explicit ``--number``.

    Without ``number`` the lowest free number from 1 is used (the tool itself would write 0
    for every node). Returns the number given.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.add_node mail mx1 10.88.0.11 number=1
    """
    if number is None:
        number = _next_free_number(list_nodes(cluster, config_file))
    _o2cb(
        [
            "add-node",
            cluster,
            node,
            "--ip",
            str(ip),
            "--port",
            str(int(port)),
            "--number",
            str(int(number)),
        ],
        config_file,
    )
    return int(number)


def remove_node(cluster, node, config_file=None):
    """
    Remove a node from ``cluster`` in cluster.conf. Unknown nodes raise.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.remove_node mail mx3
    """
    _o2cb(["remove-node", cluster, node], config_file)
    return True


def heartbeat_mode(cluster, mode=None, config_file=None):
    """
    Return the heartbeat mode of ``cluster`` (``local`` or ``global``), or set it when
    ``mode`` is given (then the new mode is returned).

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.heartbeat_mode mail
        salt '*' o2cb.heartbeat_mode mail local
    """
    if mode is not None:
        if mode not in ("local", "global"):
            raise CommandExecutionError(f"heartbeat mode must be local or global, not {mode!r}")
        _o2cb(["heartbeat-mode", cluster, mode], config_file)
        return mode
    info = cluster_info(cluster, config_file)
    if info is None:
        raise CommandExecutionError(f"O2CB cluster '{cluster}' is not defined in cluster.conf")
    return info["heartbeat_mode"]


def register_cluster(cluster, config_file=None):
    """
    Register ``cluster`` with configfs (bring it online). Needs configfs and the
    ocfs2_stack_o2cb module (the o2cb service loads them).

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.register_cluster mail
    """
    _o2cb(["register-cluster", cluster], config_file)
    return True


def unregister_cluster(cluster, config_file=None):
    """
    Unregister ``cluster`` from configfs (take it offline).

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.unregister_cluster mail
    """
    _o2cb(["unregister-cluster", cluster], config_file)
    return True


def mounted():
    """
    Return the OCFS2 volumes this node sees and the nodes that mount them, from
    ``mounted.ocfs2 -d`` and ``mounted.ocfs2 -f``::

        {"/dev/drbd0": {"stack": "o2cb", "cluster": "mail", "flags": "",
                        "uuid": "16D0...", "label": "mail", "nodes": ["mx1", "mx2"]}}

    ``nodes`` is empty when no node mounts the volume. With internal DRBD metadata the
    backing disk shows up too, with the same UUID.

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.mounted
    """
    detected = _run(["mounted.ocfs2", "-d"])["stdout"]
    full = _run(["mounted.ocfs2", "-f"])["stdout"]
    return __salt__["o2cb_parse.mounted"](detected, full)


def fs_info(device):
    """
    Return what ``blkid -p`` finds on ``device``: None for no signature, else e.g.
    ``{"type": "ocfs2", "label": "mail", "uuid": "...", "cluster": "mail"}``
    (``cluster`` from ``mounted.ocfs2 -d`` for OCFS2 volumes, else None).

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.fs_info /dev/drbd0
    """
    res = _run(["blkid", "-p", device], ok_retcodes=(0, 2))
    if res["retcode"] == 2 or not res["stdout"].strip():
        return None
    values = __salt__["o2cb_parse.blkid"](res["stdout"])
    info = {
        "type": values.get("TYPE"),
        "label": values.get("LABEL"),
        "uuid": values.get("UUID"),
        "cluster": None,
    }
    if info["type"] == "ocfs2":
        info["cluster"] = mounted().get(device, {}).get("cluster")
    return info


def mkfs(
    device,
    cluster,
    label,
    slots,
    block_size="4K",
    cluster_size="4K",
    journal_size=None,
    extra_args=None,
):
    """
    Format ``device`` as OCFS2 for the o2cb ``cluster``. It refuses a device that
    already holds any filesystem (``blkid -p``): this function never reformats.

    CLI Example:

    .. code-block:: bash

        salt 'mx1' o2cb.mkfs /dev/drbd0 mail mail 2 journal_size=4M
    """
    existing = fs_info(device)
    if existing is not None:
        raise CommandExecutionError(
            f"{device} already holds a {existing['type']} filesystem "
            f"(label {existing['label']!r}): refusing to format it"
        )
    cmd = [
        "mkfs.ocfs2",
        "-b",
        str(block_size),
        "-C",
        str(cluster_size),
        "-N",
        str(int(slots)),
        "-L",
        label,
        "--cluster-stack=o2cb",
        f"--cluster-name={cluster}",
    ]
    if journal_size:
        cmd.extend(["-J", f"size={journal_size}"])
    cmd.extend(extra_args or [])
    cmd.append(device)
    _run(cmd)
    return True


def timeouts(path=DEFAULTS_FILE):
    """
    Return the o2cb timeouts set in ``/etc/default/o2cb`` (o2cb's defaults where unset)::

        {"dead_threshold": 31, "idle_timeout_ms": 30000,
         "keepalive_delay_ms": 2000, "reconnect_delay_ms": 2000}

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.timeouts
    """
    return __salt__["o2cb_parse.timeouts"](_read(path))


def set_timeouts(
    dead_threshold=None,
    idle_timeout_ms=None,
    keepalive_delay_ms=None,
    reconnect_delay_ms=None,
    path=DEFAULTS_FILE,
):
    """
    Set o2cb timeouts in ``/etc/default/o2cb``, keeping every other line. They take
    effect when the cluster is next brought online. Returns the changes as
    ``{key: {"old": ..., "new": ...}}`` (empty when nothing changed).

    CLI Example:

    .. code-block:: bash

        salt '*' o2cb.set_timeouts dead_threshold=11 idle_timeout_ms=10000
    """
    wanted = {
        "dead_threshold": dead_threshold,
        "idle_timeout_ms": idle_timeout_ms,
        "keepalive_delay_ms": keepalive_delay_ms,
        "reconnect_delay_ms": reconnect_delay_ms,
    }
    text = _read(path)
    todo = __salt__["o2cb_parse.timeout_changes"](text, wanted)
    if todo["updates"]:
        with salt.utils.files.fopen(path, "w") as handle:
            handle.write(__salt__["o2cb_parse.render_defaults"](text, todo["updates"]))
    return todo["changes"]
