"""
Master engine: the DRBD pair's third party (issue 11, docs/storage.md "Partition"). Listens
on ``storage:drbd:arbiter:port`` (7798) for the fence-peer handlers of the storage nodes
and answers each with the verdict of the runner ``mcstore_arbiter.decide``: who of the pair
may keep writing after they lost each other.

The wire format (one signed JSON line each way) has one definition, the handler's own file
``salt/storage/files/fence_peer.py``, found in the master's file roots and loaded here.

A handler asks while DRBD holds its node's I/O frozen, so an answer must never wait for
Salt: the pillar (addresses, keeper, secret) is compiled before any request, again every
``refresh`` s in a thread of its own, and a request only costs the master's ICMP probes.
Configured in ``reactor/master.d/selfheal.conf``::

    engines:
      - mailcluster_arbiter:
          refresh: 60
"""

import importlib.util
import json
import logging
import socketserver
import threading
import time

import salt.loader

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_arbiter"

#: a handler sends one short line; a client that sends nothing is dropped after this
READ_TIMEOUT = 5.0
WIRE_FILE = ("storage/files/fence_peer.py", "salt/storage/files/fence_peer.py")


def __virtual__():
    return __virtualname__


def load_wire(path):
    """The handler's file as a module (its sign/verify functions), from ``path``."""
    spec = importlib.util.spec_from_file_location("mailcluster_fence_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve_line(line, conf, decide, wire):
    """One request line in, the signed reply line out; ``None`` (no reply: nothing to learn
    from the master) for a line that is not a request signed with a resource's secret."""
    try:
        req = json.loads(line)
        node, resource = str(req["node"]), str(req["resource"])
    except (ValueError, KeyError, TypeError):
        log.warning("mailcluster_arbiter: not a request: %.80r", line)
        return None
    res = conf["resources"].get(resource)
    if res is None or not res["secret"] or not wire.verify(req, res["secret"]):
        log.warning("mailcluster_arbiter: unsigned or unknown request: %s for %s", node, resource)
        return None
    reply = {k: req.get(k) for k in ("proto", "node", "resource", "nonce")}
    reply.update(decide(node, resource, conf))
    return json.dumps(wire.sign(reply, res["secret"])) + "\n"


def start(refresh=60, address="0.0.0.0", first_delay=5):
    """Serve forever (errors of one request are logged, never fatal)."""
    runners = salt.loader.runner(__opts__)  # noqa: F821 (injected by the loader)
    current = {"conf": None}
    while current["conf"] is None:
        current["conf"] = _load(runners)
        if current["conf"] is None:
            time.sleep(float(first_delay))
    path = runners["mcheal_ctx.find_file"](*WIRE_FILE)
    if not path:
        log.error("mailcluster_arbiter: %s is in no file root: not serving", WIRE_FILE[0])
        return
    wire = load_wire(path)
    decide = runners["mcstore_arbiter.decide"]
    threading.Thread(
        target=_refresh_loop, args=(runners, current, float(refresh)), daemon=True
    ).start()

    class Handler(socketserver.StreamRequestHandler):
        timeout = READ_TIMEOUT

        def handle(self):
            try:
                line = self.rfile.readline(4096).decode("utf-8", "replace")
                reply = serve_line(line, current["conf"], decide, wire)
                if reply:
                    self.wfile.write(reply.encode())
            except Exception:  # pylint: disable=broad-except
                log.exception("mailcluster_arbiter: request from %s failed", self.client_address)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    port = int(current["conf"]["port"])
    with socketserver.ThreadingTCPServer((address, port), Handler) as server:
        server.daemon_threads = True
        log.info("mailcluster_arbiter: listening on %s:%s", address, port)
        server.serve_forever()


def _load(runners):
    try:
        return runners["mcstore_arbiter.config"](with_secrets=True)
    except Exception:  # pylint: disable=broad-except
        log.exception("mailcluster_arbiter: compiling the pillar failed")
        return None


def _refresh_loop(runners, current, refresh):
    while True:
        time.sleep(refresh)
        conf = _load(runners)
        if conf is not None:
            current["conf"] = conf
