"""Brute-force protection (issue 13.6, salt/fail2ban, docs/fail2ban.md) in the nspawn lab.

Attackers are extra addresses on the host's lab uplink (four picked at random in ``.200`` to
``.249`` per run: dovecot keeps an auth penalty per address for an hour, which would slow a
rerun down), bound to by the clients, so that no ban ever touches the host's own address
(10.88.0.1, which every other lab test uses and the lab pillar ignores) or a node. Real
clients, each failed login on a connection of its own, the failures of one attacker side by
side (as a real one would: dovecot delays each failure 2 s or more):

- SMTP AUTH on 587 (smtplib, STARTTLS, a wrong password) against mx1: banned on mx1 (its
  connections refused), then on mx2 and ns1 by the master's reactor (the peer ban), while the
  host still connects everywhere;
- IMAP logins (imaplib, STARTTLS) against mx2: banned on mx2 and on mx1;
- Postfix Admin logins (its real login form over HTTPS) on ns1: banned on ns1's 443, and on
  the mail nodes' ports;
- Roundcube logins on ns1: banned on ns1; Roundcube's own failed IMAP logins come from ns1,
  which no mail node bans;
- with a ban in place: a firewall reload (what a firewall apply does) keeps fail2ban's table,
  a fail2ban restart keeps the firewall's table and the ban;
- the bans lift after the lab's bantime (30 s) on the node and its peers;
- a second apply of the role changes nothing.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import imaplib
import random
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
from _roles_helpers import state_results
from mc_wait import seconds_until as wait

pytestmark = pytest.mark.lab

BANTIME = 30  # pillar/fail2ban.sls
MAXRETRY = 3
F2B_NODES = ("mx1", "mx2", "ns1")


def _ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the ban is the subject here, not the certificate
    return ctx


def reach(src: str, host: str, port: int, timeout: float = 2.0) -> str:
    """``open``, ``refused`` (fail2ban's reject: ICMP port unreachable) or ``filtered``."""
    try:
        socket.create_connection((host, port), timeout=timeout, source_address=(src, 0)).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "filtered"


def smtp_auth_fails(src: str, host: str) -> str:
    """One SMTP AUTH PLAIN with a wrong password on its own connection: the server's code,
    or why there was no answer (a ban closes the port)."""
    try:
        with smtplib.SMTP(host, 587, timeout=10, source_address=(src, 0)) as smtp:
            smtp.ehlo("attacker.invalid")
            smtp.starttls(context=_ctx())
            smtp.ehlo("attacker.invalid")
            try:
                smtp.auth("PLAIN", lambda _=None: "\0alice@example.test\0not-her-password")
            except smtplib.SMTPAuthenticationError as exc:
                return str(exc.smtp_code)
            return "accepted"
    except (OSError, smtplib.SMTPException) as exc:
        return type(exc).__name__


class _IMAP(imaplib.IMAP4):
    def __init__(self, host, src):
        self._src = src
        super().__init__(host, 143, timeout=10)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._src, 0)
        )


def imap_login_fails(src: str, host: str) -> str:
    try:
        imap = _IMAP(host, src)
    except OSError as exc:
        return type(exc).__name__
    try:
        imap.starttls(ssl_context=_ctx())
        imap.login("bob@example.test", "not-his-password")
        return "accepted"
    except imaplib.IMAP4.error:
        return "NO"
    finally:
        imap.shutdown()  # dovecot logs the failed login when the client goes


def _https(src, host, method, path, body=None, cookie=None):
    conn = http.client.HTTPSConnection(
        host, 443, timeout=40, context=_ctx(), source_address=(src, 0)
    )
    headers = {"Host": "webmail.cluster.test"}
    if cookie:
        headers["Cookie"] = cookie
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    cookies = "; ".join(v.split(";")[0] for k, v in resp.getheaders() if k.lower() == "set-cookie")
    return resp.status, cookies, resp.read().decode(errors="replace")


def postfixadmin_login_fails(src: str, host: str) -> str:
    try:
        _, cookie, page = _https(src, host, "GET", "/postfixadmin/login.php")
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        form = {"fUsername": "nobody@example.test", "fPassword": "wrong", "token": token}
        status, _, page = _https(src, host, "POST", "/postfixadmin/login.php", form, cookie)
    except OSError as exc:
        return type(exc).__name__
    return f"{status} {'login form again' if 'fPassword' in page else 'other page'}"


def roundcube_login_fails(src: str, host: str) -> str:
    try:
        _, cookie, page = _https(src, host, "GET", "/roundcube/")
        token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
        form = {"_task": "login", "_action": "login", "_timezone": "UTC", "_url": ""}
        form.update(_user="alice@example.test", _pass="not-her-password", _token=token)
        status, _, _ = _https(src, host, "POST", "/roundcube/?_task=login", form, cookie)
    except OSError as exc:
        return type(exc).__name__
    return str(status)


def banned(lab, node: str, jail: str) -> list[str]:
    out = lab.run(node, "fail2ban-client", "status", jail).stdout
    line = next((x for x in out.splitlines() if "Banned IP list:" in x), "")
    return line.split(":", 1)[1].split() if line else []


@pytest.fixture(scope="module")
def attackers(lab):
    """Five addresses of the host's lab uplink, unbanned on every node at the start and end."""
    sub, dev = lab.lab.subnet, lab.lab.host_if
    have = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    free = [n for n in range(200, 250) if f" {sub}.{n}/" not in have]
    picked = [f"{sub}.{n}" for n in random.sample(free, 5)]
    addrs = dict(zip(("smtp", "imap", "pfa", "rc", "manual"), picked, strict=True))

    def unban_all():
        for node in F2B_NODES:
            lab.run(node, "fail2ban-client", "unban", *addrs.values())

    for addr in addrs.values():
        subprocess.run(["ip", "addr", "add", f"{addr}/32", "dev", dev], check=True)
    unban_all()
    yield addrs
    unban_all()
    for addr in addrs.values():
        subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", dev], check=False)


#: attacker -> (client, node attacked, its jail, its port, [(peer, a port of the peer)])
SCENARIOS = {
    "smtp": (smtp_auth_fails, "mx1", "postfix-sasl", 587, [("mx2", 587), ("ns1", 443)]),
    "imap": (imap_login_fails, "mx2", "dovecot", 143, [("mx1", 143), ("ns1", 443)]),
    "pfa": (postfixadmin_login_fails, "ns1", "postfixadmin", 443, [("mx1", 587), ("mx2", 993)]),
    "rc": (roundcube_login_fails, "ns1", "roundcube-auth", 443, [("mx2", 587)]),
}
EXPECTED = {"smtp": "535", "imap": "NO", "pfa": "200 login form again", "rc": "401"}


class Scenario(threading.Thread):
    """One attacker: MAXRETRY failed logins at once, then the times (s after the attack began)
    of the ban where it attacked (watched while the logins run: dovecot may hold the last one
    back past the ban), on each peer, and of the ban's end there and on the peers."""

    def __init__(self, lab, name, src):
        super().__init__(name=name, daemon=True)
        self.lab, self.src = lab, src
        self.client, self.node, self.jail, self.port, self.peers = SCENARIOS[name]
        self.ip = {n: lab.ip(n) for n in F2B_NODES}
        self.answers, self.times, self.error = [], {}, None
        self.peered = threading.Event()

    def refused(self, node, port):
        return reach(self.src, self.ip[node], port) == "refused"

    def open(self, node, port):
        # not "not refused": the kernel sends the reject's ICMP at most about once a second to
        # one address, so a banned attacker that asks often also sees timeouts ("filtered")
        return reach(self.src, self.ip[node], port) == "open"

    def run(self):
        try:
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(MAXRETRY) as pool:
                target = self.ip[self.node]
                calls = [pool.submit(self.client, self.src, target) for _ in range(MAXRETRY)]
                while not all(c.done() for c in calls) and "banned" not in self.times:
                    if self.refused(self.node, self.port):
                        self.times["banned"] = round(time.monotonic() - t0, 1)
                    time.sleep(0.3)
                self.answers = [c.result() for c in calls]
            self.times["attack"] = round(time.monotonic() - t0, 1)
            if "banned" not in self.times:
                wait(lambda: self.refused(self.node, self.port), 20)
                self.times["banned"] = round(time.monotonic() - t0, 1)
            assert self.src in banned(self.lab, self.node, self.jail)
            for peer, port in self.peers:
                wait(lambda p=peer, q=port: self.refused(p, q), 30, 0.5)
                self.times[f"peer {peer}"] = round(time.monotonic() - t0, 1)
            self.peered.set()
            wait(lambda: self.open(self.node, self.port), BANTIME + 20, 0.5)
            self.times["lifted"] = round(time.monotonic() - t0, 1)
            for peer, port in self.peers:
                wait(lambda p=peer, q=port: self.open(p, q), BANTIME + 20, 0.5)
                self.times[f"lifted {peer}"] = round(time.monotonic() - t0, 1)
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.peered.set()


def firewall_rules(lab, node: str) -> str:
    """The firewall role's table, its counters left out (a reload sets them back to 0)."""
    text = lab.run(node, "nft", "list", "table", "inet", "mailcluster").stdout
    return re.sub(r"packets \d+ bytes \d+", "", text)


def test_fail2ban_bans_on_every_node_and_lets_go(lab, attackers):
    ip = {n: lab.ip(n) for n in F2B_NODES}
    host = lab.host_ip
    # the firewall and fail2ban leave each other's table alone: a firewall reload (what a
    # firewall apply does) keeps a ban, a fail2ban restart keeps the firewall's ruleset and,
    # from fail2ban's database, the ban (a ban made by hand in the peer jail: no event)
    manual = attackers["manual"]
    lab.run("mx1", "fail2ban-client", "set", "mailcluster-peer", "banip", manual)
    wait(lambda: reach(manual, ip["mx1"], 587) == "refused", 10)
    before = firewall_rules(lab, "mx1")
    assert "chain input" in before
    lab.run("mx1", "systemctl", "reload", "nftables")
    addr_set = lab.run(
        "mx1", "nft", "list", "set", "inet", "f2b-table", "addr-set-mailcluster-peer"
    )
    assert manual in addr_set.stdout
    assert reach(manual, ip["mx1"], 587) == "refused"
    lab.run("mx1", "systemctl", "restart", "fail2ban")
    # fail2ban lists a restored ban a moment before its action has put it back into nftables
    wait(lambda: reach(manual, ip["mx1"], 587) == "refused", 15)
    assert manual in banned(lab, "mx1", "mailcluster-peer")
    assert firewall_rules(lab, "mx1") == before
    assert reach(host, ip["mx1"], 587) == "open"
    lab.run("mx1", "fail2ban-client", "unban", manual)
    assert reach(manual, ip["mx1"], 587) == "open"

    for name, (_, node, _, port, _) in SCENARIOS.items():
        assert reach(attackers[name], ip[node], port) == "open", (name, attackers[name])
    runs = {name: Scenario(lab, name, attackers[name]) for name in SCENARIOS}
    for run in runs.values():
        run.start()

    # every ban in place where it was made and on the peers; the host still gets in
    for run in runs.values():
        run.peered.wait(90)
        assert run.error is None, (run.name, run.answers, run.times, run.error)
    assert {n: r.answers for n, r in runs.items()} == {
        n: [e] * MAXRETRY for n, e in EXPECTED.items()
    }
    for name, (_, node, _, port, peers) in SCENARIOS.items():
        for where, p in [(node, port), *peers]:
            assert reach(host, ip[where], p) == "open", (name, where, p)
    # the cluster never bans itself: ns1 (Roundcube's IMAP client) is in no mail node's jail
    for node in ("mx1", "mx2"):
        for jail in ("dovecot", "postfix-sasl", "mailcluster-peer"):
            assert ip["ns1"] not in banned(lab, node, jail), (node, jail)
    # an event naming a cluster address is refused by the master (its log says why)
    refusal = f"fail2ban peer ban refused: {ip['mx2']} is a cluster address"

    def refusals():
        log = lab.run("salt", "grep", "-c", refusal, "/var/log/salt/master").stdout
        return int(log.strip() or 0)

    seen = refusals()
    event = ["salt-call", "event.send", "mailcluster/fail2ban/ban", "jail=dovecot"]
    lab.run("mx1", *event, f"ip={ip['mx2']}")
    wait(lambda: refusals() > seen, 15, 0.5)

    # a second apply of the role changes nothing (while the bans run out)
    ret = lab.salt_json("-C", "mx1 or mx2 or ns1", "state.sls", "fail2ban", timeout=300)
    failed, changed = state_results(ret)
    assert set(ret) == set(F2B_NODES), ret
    assert failed == [] and changed == [], (failed, changed)
    assert ip["mx2"] not in banned(lab, "mx1", "mailcluster-peer")

    # the bans lift after bantime, where they were made and on the peers
    for run in runs.values():
        run.join(BANTIME + 90)
        assert not run.is_alive() and run.error is None, (run.name, run.times, run.error)
    times = {n: r.times for n, r in runs.items()}
    print("seconds after each attack:", times)
    for name, t in times.items():
        assert BANTIME - 5 <= t["lifted"] - t["banned"] <= BANTIME + 15, (name, t)
