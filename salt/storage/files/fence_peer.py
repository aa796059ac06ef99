"""DRBD fence-peer handler of the mail pair: the Salt master decides who keeps writing.

Installed by the storage role (backend drbd_ocfs2) as /usr/local/sbin/mailcluster-fence-peer
and named in the resource's `handlers { fence-peer ...; }` with `fencing
resource-and-stonith`. DRBD runs it when this node loses its peer while the peer's disk was
UpToDate, after it has frozen I/O on the resource; what it exits with decides the rest:

- 7 ("peer fenced"): the master's arbiter (reactor/engines/mailcluster_arbiter.py) granted
  this node the resource: the master cannot reach the peer (dead, or cut off from
  everything), or it reaches both and this node is the pair's partition keeper. DRBD marks
  the peer Outdated and resumes I/O here.
- 1, after a denial: the master reaches the peer and the peer keeps writing. I/O stays frozen
  (nothing written here can diverge) and, unless the config says otherwise, the node reboots
  at once: its store waits for the peer at boot (mailcluster-store) and resyncs from it.
- 1, with no verdict within the config's timeout (master down or unreachable): I/O stays
  frozen; a reconnection of the pair resumes it, else OCFS2's disk heartbeat fences the node.

The same file is the wire format's one definition: the master's engine
(reactor/engines/mailcluster_arbiter.py) loads it from the file roots. A request and a reply
are one JSON line each, signed with HMAC-SHA256 under the resource's DRBD shared secret (both
nodes and the master know it from pillar), the reply bound to the request's nonce.

Usage (DRBD sets DRBD_RESOURCE): mailcluster-fence-peer CONFIG_JSON
CONFIG_JSON: {"host", "port", "timeout", "node", "resource", "secret", "reboot_on_deny"},
mode 0600 (storage role).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import sys
import syslog
import time

PROTOCOL = "mailcluster-arbiter/1"
#: DRBD 8.4's fence-peer exit codes used here (drbd.conf(5))
EXIT_FENCED = 7
EXIT_NO_GRANT = 1
#: one line each way; anything longer is not ours
MAX_LINE = 4096


def canonical(message: dict) -> bytes:
    """The bytes a MAC covers: the message without its ``mac``, keys sorted."""
    body = {k: v for k, v in message.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _mac(message: dict, secret: str) -> str:
    return hmac.new(secret.encode(), canonical(message), hashlib.sha256).hexdigest()


def sign(message: dict, secret: str) -> dict:
    return dict(message, mac=_mac(message, secret))


def verify(message: dict, secret: str) -> bool:
    return hmac.compare_digest(str(message.get("mac", "")), _mac(message, secret))


def request(node: str, resource: str, secret: str, nonce: str | None = None) -> dict:
    nonce = nonce or secrets.token_hex(16)
    message = {"proto": PROTOCOL, "node": node, "resource": resource, "nonce": nonce}
    return sign(message, secret)


def reply_matches(reply: dict, req: dict, secret: str) -> bool:
    """The reply is the master's answer to this very request (MAC, nonce, node, resource)."""
    return verify(reply, secret) and all(
        reply.get(k) == req[k] for k in ("proto", "node", "resource", "nonce")
    )


def _ask(host: str, port: int, req: dict, timeout: float) -> dict:
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n") and len(data) < MAX_LINE:
            chunk = conn.recv(MAX_LINE)
            if not chunk:
                break
            data += chunk
    return json.loads(data.decode())


def _log(text: str) -> None:
    # DRBD logs only the helper's exit code: the reason goes to the journal and to stderr
    syslog.openlog("mailcluster-fence-peer")
    syslog.syslog(syslog.LOG_WARNING, text)
    print(f"mailcluster-fence-peer: {text}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: mailcluster-fence-peer CONFIG_JSON", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        conf = json.load(fh)
    resource = os.environ.get("DRBD_RESOURCE") or conf["resource"]
    req = request(conf["node"], resource, conf["secret"])
    deadline = time.monotonic() + float(conf["timeout"])
    last = "no attempt"
    while time.monotonic() < deadline:
        left = max(1.0, deadline - time.monotonic())
        try:
            reply = _ask(conf["host"], int(conf["port"]), req, timeout=left)
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(1)
            continue
        if not reply_matches(reply, req, conf["secret"]):
            last = "a reply that is not the master's answer to this request (MAC or nonce)"
            time.sleep(1)
            continue
        if reply.get("verdict") == "grant":
            _log(f"{resource}: the master grants this node the resource: {reply.get('reason')}")
            return EXIT_FENCED
        _log(f"{resource}: the master denies this node the resource: {reply.get('reason')}")
        if conf.get("reboot_on_deny", True):
            _log(f"{resource}: I/O stays frozen; rebooting now (the peer keeps writing)")
            with open("/proc/sysrq-trigger", "w") as trigger:
                trigger.write("b")
        return EXIT_NO_GRANT
    _log(
        f"{resource}: no verdict from the master at {conf['host']}:{conf['port']} within "
        f"{conf['timeout']} s ({last}): I/O stays frozen"
    )
    return EXIT_NO_GRANT


if __name__ == "__main__":
    sys.exit(main(sys.argv))
