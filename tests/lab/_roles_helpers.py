"""Helpers of the roles' lab tests: state runs, salt-call, mail protocol and DNS clients
(the browser is in _browser.py, the poll loop in tests/mc_wait.py)."""

from __future__ import annotations

import imaplib
import json
import os
import pathlib
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from email.message import EmailMessage

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import mc_wait

REPO = pathlib.Path(__file__).resolve().parents[2]
LOCAL_PILLAR = REPO / "pillar" / "roles_test.sls"
PASSWORDS = {
    "alice@example.test": "alice-lab-pw",
    "bob@example.test": "bob-lab-pw",
    "dave@sales.test": "dave-lab-pw",
}


def tls_context() -> ssl.SSLContext:
    """Trust the cluster CA as the master made it (salt/ca; no CA in the lab pillar), no host
    name check (IPs are used)."""
    pem = subprocess.run(
        [str(REPO / "lab" / "lab"), "run", "salt", "--", "cat", "/etc/pki/mailcluster/ca.crt"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    ctx = ssl.create_default_context(cadata=pem)
    ctx.check_hostname = False
    return ctx


ALL_NODES = ("salt", "mx1", "mx2", "ns1", "ns2")


def apply_all(lab, *extra: str, target: str = "*", expect=ALL_NODES, timeout: float = 1800):
    """`salt TARGET state.apply`, published asynchronously and collected from the job cache:
    the CLI's wait for returns sometimes misses one over the lab's TCP transport (a busy
    minion that does not answer find_job in time is left out of the CLI's output, and a
    highstate with a node missing would look clean). Returns ``(returns, seconds)``."""
    t0 = time.monotonic()
    proc = lab.salt(target, "state.apply", *extra, "--async", timeout=120)
    jid = re.search(r"job ID: (\d+)", proc.stdout + proc.stderr)
    assert jid, proc.stdout + proc.stderr

    def returns():
        out = lab.salt_run("jobs.lookup_jid", jid.group(1), "--out=json", timeout=120).stdout
        try:
            return json.JSONDecoder().raw_decode(out)[0]
        except ValueError:
            return {}

    ret = mc_wait.wait_for(
        returns,
        timeout,
        2,
        what=f"state.apply's returns (job {jid.group(1)}) from {', '.join(expect)}",
        until=lambda ret: set(ret) >= set(expect),
        show=lambda ret: f"returns from {sorted(ret)}, none from {sorted(set(expect) - set(ret))}",
    )
    return ret, time.monotonic() - t0


def state_results(ret: dict) -> tuple[list[str], list[str]]:
    """Failed states (with their comments) and the states with changes, over every minion of
    a state run's JSON return (a minion's string return, a render error, counts as failed)."""
    failed, changed = [], []
    for minion, states in ret.items():
        if not isinstance(states, dict):
            failed.append(f"{minion}: {states}")
            continue
        for key, st in states.items():
            if st.get("result") is False:
                failed.append(f"{minion}: {key}: {str(st.get('comment'))[:300]}")
            if st.get("changes"):
                parts = key.split("_|-")
                changed.append(f"{minion}: {parts[1] if len(parts) > 1 else key}")
    return failed, changed


def summarize(ret: dict) -> tuple[list[str], int]:
    """Failed states and the number of states with changes, over every minion."""
    failed, changed = state_results(ret)
    return failed, len(changed)


def salt_call_json(lab, node: str, *args: str, timeout: float = 120):
    """``salt-call ARGS`` on ``node``; its ``local`` return. ``--no-return-event`` keeps the
    return off the master's job cache (the secrets pillar, DKIM keys), and for the same reason
    a failure names the call and its stderr, never its stdout."""
    proc = lab.run(node, "salt-call", "--no-return-event", "--out=json", *args, timeout=timeout)
    assert proc.returncode == 0, (
        f"salt-call {args[0]} on {node} failed (rc {proc.returncode}): {proc.stderr[-500:]}"
    )
    return json.loads(proc.stdout)["local"]


def wait_port(host: str, port: int, timeout: float = 60) -> None:
    def connects():
        with socket.create_connection((host, port), timeout=2):
            return True

    wait_for(connects, timeout, 0.5, what=f"{host}:{port} to accept connections")


def new_message(rcpt: str, subject: str, sender: str = "tester@outside.invalid") -> EmailMessage:
    """A small test message with a Message-ID of its own (``msg["Message-ID"]``)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@lab.test>"
    msg.set_content(f"lab test message {subject}\n")
    return msg


def send_mail(host: str, rcpt: str, subject: str, port: int = 25, login=None) -> None:
    sender = "tester@outside.invalid" if login is None else login[0]
    send_message(host, new_message(rcpt, subject, sender), port, login)


def send_message(host: str, msg, port: int = 25, login=None, announce_size: bool = True):
    """SMTP ``msg`` to ``host``; with ``login`` (user, password), AUTH after STARTTLS.
    ``announce_size=False`` leaves out MAIL's SIZE= (RCPT then sees only the usage)."""
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.ehlo("tester.lab.test")
        if login is not None:
            smtp.starttls(context=tls_context())
            smtp.ehlo("tester.lab.test")
            smtp.login(*login)
        if not announce_size:
            smtp.esmtp_features.pop("size", None)
        smtp.send_message(msg)


def fetch_raw(host: str, user: str, subject: str) -> bytes | None:
    """The raw message with ``subject`` in ``user``'s INBOX (IMAP, STARTTLS), None if none."""
    with imaplib.IMAP4(host, 143, timeout=30) as imap:
        imap.starttls(ssl_context=tls_context())
        imap.login(user, PASSWORDS[user])
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "SUBJECT", f'"{subject}"')
        nums = data[0].split()
        if not nums:
            return None
        _, parts = imap.fetch(nums[-1], "(BODY.PEEK[])")
        return parts[0][1]


def served_txt(server_ip: str, name: str) -> bytes | None:
    """The TXT record ``name`` as that DNS server answers it, its strings joined (None: not
    there)."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    resp = dns.query.udp(query, server_ip, timeout=3)
    if resp.flags & dns.flags.TC:
        resp = dns.query.tcp(query, server_ip, timeout=3)
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            return b"".join(next(iter(rrset)).strings)
    return None


def acme_root_pem(lab) -> str:
    """The root the lab's ACME CA (pebble, on the master) issues under, over its HTTPS API
    (pebble makes a new one at each start)."""
    proc = lab.run(
        "salt",
        "curl",
        "-sf",
        "--cacert",
        "/etc/ssl/mailcluster/ca.crt",
        "https://salt.cluster.test:15000/roots/0",
    )
    assert proc.returncode == 0 and proc.stdout.startswith("-----BEGIN CERTIFICATE-----"), (
        proc.stdout + proc.stderr
    )
    return proc.stdout


def imap_header(host: str, user: str, field: str = "SUBJECT", timeout: float = 30) -> list[str]:
    """Header ``field`` of every message in ``user``'s INBOX at ``host``, in order, one entry
    per copy (a duplicate delivery shows twice)."""
    with imaplib.IMAP4(host, 143, timeout=timeout) as imap:
        imap.starttls(ssl_context=tls_context())
        imap.login(user, PASSWORDS[user])
        _, count = imap.select("INBOX", readonly=True)
        if int(count[0]) == 0:
            return []
        _, data = imap.fetch("1:*", f"(BODY.PEEK[HEADER.FIELDS ({field})])")
    return [part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]


def imap_subjects(host: str, user: str) -> list[str]:
    return imap_header(host, user, "SUBJECT")


def pop3_subjects(host: str, user: str) -> list[str]:
    pop = poplib.POP3(host, 110, timeout=30)
    try:
        pop.stls(context=tls_context())
        pop.user(user)
        pop.pass_(PASSWORDS[user])
        out = []
        count, _ = pop.stat()
        for i in range(1, count + 1):
            _, lines, _ = pop.top(i, 0)
            for line in lines:
                if line.lower().startswith(b"subject:"):
                    out.append(line.decode().split(":", 1)[1].strip())
        return out
    finally:
        pop.quit()


def wait_for(fn, timeout: float = 60, interval: float = 1.0, what: str | None = None):
    """mc_wait.wait_for, polling through any error of ``fn`` (a client of a daemon that is
    not up yet): the last one is in the timeout message."""
    return mc_wait.wait_for(fn, timeout, interval, what=what, ignore=(Exception,))


def http_get(url: str) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
