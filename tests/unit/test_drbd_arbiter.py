"""The DRBD pair's third party (issue 11 item 5): the master's verdicts
(_runners/mcstore_arbiter.py, through Salt's runner loader as on the master), the engine's
handling of one request (reactor/engines/mailcluster_arbiter.py) and the node's fence-peer
handler (salt/storage/files/fence_peer.py) talking to them over loopback.

The verdict table is checked on its pure function; the handler runs as a real process
against a real TCP server whose answers come from the runner, with both "nodes" on loopback
addresses (127.0.0.1, 127.0.0.2: the master's ICMP probes reach them), and never with
``reboot_on_deny`` (that would reboot the machine running the tests). The whole path in a
real partition of the qemu pair: tests/seed/test_40_partition.py.
"""

from __future__ import annotations

import importlib.util
import json
import socketserver
import subprocess
import sys
import threading

import pytest
from mc_unit_helpers import REPO, runner_loader

HANDLER = REPO / "salt/storage/files/fence_peer.py"
SECRET = "unit-test-drbd-secret"
_spec = importlib.util.spec_from_file_location(
    "mailcluster_arbiter", REPO / "reactor/engines/mailcluster_arbiter.py"
)
engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(engine)
wire = engine.load_wire(HANDLER)


def _conf(keeper="mx1", mx1="127.0.0.1", mx2="127.0.0.2", hold=300.0):
    nodes = {"mx1": mx1, "mx2": mx2}
    return {
        "port": 0,
        "hold": hold,
        "probes": 1,
        "probe_timeout": 1.0,
        "resources": {"r0": {"nodes": nodes, "keeper": keeper, "secret": SECRET}},
    }


@pytest.fixture
def runners(tmp_path):
    return runner_loader(tmp_path)


BOTH = {"mx1": True, "mx2": True}


@pytest.mark.parametrize(
    ("node", "reach", "grants", "word", "why"),
    [
        ("mx1", BOTH, {}, "grant", "a partition, and mx1 is the keeper"),
        ("mx2", BOTH, {}, "deny", "a partition, and mx1 keeps writing"),
        ("mx2", {"mx1": False, "mx2": True}, {}, "grant", "does not reach mx1"),
        ("mx1", {"mx1": True, "mx2": False}, {}, "grant", "does not reach mx2"),
        # its own probe fails: ICMP filtered, the probes say nothing about the peer either
        ("mx2", {"mx1": False, "mx2": False}, {}, "deny", "does not reach mx2 itself"),
        # a grant to the peer in this episode wins over what the probes say now
        ("mx1", BOTH, {"r0": {"node": "mx2", "at": 990.0}}, "deny", "mx2 was granted r0 10 s"),
        ("mx1", BOTH, {"r0": {"node": "mx2", "at": 600.0}}, "grant", "mx1 is the keeper"),
        ("mx2", BOTH, {"r0": {"node": "mx2", "at": 990.0}}, "deny", "mx1 keeps writing"),
        ("mx3", BOTH, {}, "deny", "mx3 is not a node of r0"),
    ],
)
def test_verdicts(runners, node, reach, grants, word, why):
    got = runners["mcstore_arbiter.verdict"](node, "r0", _conf(), reach, grants, 1000.0)
    assert got[0] == word and why in got[1], got


def test_an_unknown_resource_is_denied(runners):
    word, why = runners["mcstore_arbiter.verdict"]("mx1", "r9", _conf(), BOTH, {}, 0.0)
    assert word == "deny" and "r9 is not a drbd_ocfs2 resource" in why


def test_wire_signatures_bind_the_reply_to_the_request():
    req = wire.request("mx2", "r0", SECRET)
    assert wire.verify(req, SECRET)
    assert not wire.verify(dict(req, node="mx1"), SECRET)
    assert not wire.verify(req, "another-secret")
    reply = wire.sign({**{k: req[k] for k in ("proto", "node", "resource", "nonce")},
                       "verdict": "grant"}, SECRET)  # fmt: skip
    assert wire.reply_matches(reply, req, SECRET)
    assert not wire.reply_matches(dict(reply, verdict="deny"), req, SECRET)
    replayed = wire.sign(dict(reply, nonce="0" * 32), SECRET)
    assert not wire.reply_matches(replayed, req, SECRET)


@pytest.fixture
def arbiter(runners):
    """A TCP server on loopback answering with the engine's ``serve_line`` and the runner's
    ``decide`` (as the engine does); yields its port."""
    conf = _conf()
    decide = runners["mcstore_arbiter.decide"]

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline(4096).decode()
            reply = engine.serve_line(line, conf, decide, wire)
            if reply:
                self.wfile.write(reply.encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _handler(tmp_path, node, port, secret=SECRET, timeout=5):
    conf = tmp_path / f"arbiter-{node}.json"
    conf.write_text(json.dumps({
        "host": "127.0.0.1", "port": port, "timeout": timeout, "node": node,
        "resource": "r0", "secret": secret, "reboot_on_deny": False,
    }))  # fmt: skip
    return subprocess.run(
        [sys.executable, str(HANDLER), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DRBD_RESOURCE": "r0", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def test_in_a_partition_the_keeper_gets_the_resource_and_its_peer_does_not(tmp_path, arbiter):
    port = arbiter
    denied = _handler(tmp_path, "mx2", port)
    assert denied.returncode == wire.EXIT_NO_GRANT, denied.stderr
    assert "denies this node the resource" in denied.stderr
    assert "mx1 keeps writing" in denied.stderr
    granted = _handler(tmp_path, "mx1", port)
    assert granted.returncode == wire.EXIT_FENCED, granted.stderr
    assert "the master reaches both" in granted.stderr
    # the grant holds: mx2 asking again in the same episode is denied, whatever it claims
    again = _handler(tmp_path, "mx2", port)
    assert again.returncode == wire.EXIT_NO_GRANT and "mx1 was granted r0" in again.stderr


def test_a_request_with_another_secret_gets_no_answer(tmp_path, arbiter):
    port = arbiter
    proc = _handler(tmp_path, "mx1", port, secret="not-the-pairs-secret", timeout=3)
    assert proc.returncode == wire.EXIT_NO_GRANT
    assert "no verdict from the master" in proc.stderr


def test_no_master_means_no_verdict_and_frozen_io(tmp_path):
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as srv:
        port = srv.server_address[1]  # bound, then closed: nothing listens there
    proc = _handler(tmp_path, "mx1", port, timeout=3)
    assert proc.returncode == wire.EXIT_NO_GRANT
    assert "no verdict from the master at 127.0.0.1" in proc.stderr
    assert "ConnectionRefusedError" in proc.stderr
