"""Helpers of the roles' lab tests: mail protocol clients and a headless Chromium driven over
the DevTools protocol (aiohttp's websocket client, which the venv already has)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import os
import pathlib
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from email.message import EmailMessage

import dns.flags
import dns.message
import dns.query
import dns.rdatatype

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
    deadline = t0 + timeout
    while True:
        time.sleep(2)
        out = lab.salt_run("jobs.lookup_jid", jid.group(1), "--out=json", timeout=120).stdout
        try:
            ret, _ = json.JSONDecoder().raw_decode(out)
        except ValueError:
            ret = {}
        if set(ret) >= set(expect):
            return ret, time.monotonic() - t0
        assert time.monotonic() < deadline, f"no return from {set(expect) - set(ret)}"


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


def wait_port(host: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def send_mail(host: str, rcpt: str, subject: str, port: int = 25, login=None) -> None:
    msg = EmailMessage()
    msg["From"] = "tester@outside.invalid" if login is None else login[0]
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@lab.test>"
    msg.set_content(f"lab test message {subject}\n")
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.ehlo("tester.lab.test")
        if login is not None:
            smtp.starttls(context=tls_context())
            smtp.ehlo("tester.lab.test")
            smtp.login(*login)
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


def imap_subjects(host: str, user: str) -> list[str]:
    with imaplib.IMAP4(host, 143, timeout=30) as imap:
        imap.starttls(ssl_context=tls_context())
        imap.login(user, PASSWORDS[user])
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(parts[0][1].decode().split(":", 1)[1].strip())
        return out


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


def wait_for(fn, timeout: float = 60, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # keep polling, report the last error
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out; last result: {last!r}")


# ------------------------------------------------------------------ headless chromium
def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium(port: int = 9333):
    """A headless Chromium with remote debugging on localhost; yields the port."""
    profile = tempfile.mkdtemp(prefix="mc-chromium-")
    proc = subprocess.Popen(
        [
            chromium_binary(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--ignore-certificate-errors",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port, timeout=30)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The first tab of a Chromium, driven through the DevTools protocol."""

    def __init__(self, ws):
        self.ws = ws
        self.seq = 0

    async def call(self, method: str, **params):
        self.seq += 1
        mid = self.seq
        await self.ws.send_str(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expr: str):
        res = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res.get("result", {}).get("value")

    async def wait_js(self, expr: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expr)
            if value:
                return value
            await asyncio.sleep(0.3)
        raise AssertionError(f"page never satisfied {expr!r}: {await self.js('document.title')}")


def roundcube_login_sees(url: str, user: str, password: str, subject: str, shot: str) -> str:
    """Log in to Roundcube at ``url`` in a real browser; return the inbox text seen."""
    import aiohttp

    async def scenario(port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as resp:
            tabs = [t for t in json.load(resp) if t["type"] == "page"]
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(tabs[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws,
        ):
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url)
            await page.wait_js("!!document.querySelector('#rcmloginuser')")
            await page.js(
                f"document.querySelector('#rcmloginuser').value = {json.dumps(user)};"
                f"document.querySelector('#rcmloginpwd').value = {json.dumps(password)};"
                "document.querySelector('#rcmloginsubmit').click(); true"
            )
            text = await page.wait_js(
                "(document.querySelector('#messagelist') &&"
                f" document.body.innerText.includes({json.dumps(subject)}))"
                " ? document.body.innerText : ''",
                timeout=45,
            )
            png = await page.call("Page.captureScreenshot", format="png")
            import base64

            pathlib.Path(shot).write_bytes(base64.b64decode(png["data"]))
            return text

    with chromium() as port:
        return asyncio.run(scenario(port))


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
