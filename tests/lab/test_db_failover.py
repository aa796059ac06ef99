"""Issue 12.2: a DB server down costs a mail client at most a second or two.

Each mail node's postfix maps and dovecot auth list every DB server (nearest first) with short
connect timeouts. With MariaDB on the primary stopped (the server refuses) and with the primary
cut off the network (a dead server: nothing answers, the connect times out), both mail nodes
must still authenticate SMTP submission and IMAP logins and deliver mail. Each login and each
delivery is timed; the figures are printed for the session note.
"""

from __future__ import annotations

import imaplib
import smtplib
import time
import uuid

import pytest
from _roles_helpers import PASSWORDS, http_get, imap_subjects, send_mail, tls_context, wait_for
from checks import nspawn_host

pytestmark = pytest.mark.lab

MAIL_NODES = ("mx1", "mx2")
USER = "alice@example.test"
#: the issue's bound: a dead server costs a client "at most a second or two" (IMAP login, SMTP
#: AUTH). The SMTP session before AUTH is printed, not bounded: with the DNS primary cut off it
#: pays 2-3 s of DNS, not DB (smtpd's lookup of the client is REFUSED by the reachable server
#: and times out at the other, 1 s per try; docs/roles.md)
LOGIN_BUDGET = 2.5


def _imap_login_seconds(host: str) -> float:
    t0 = time.monotonic()
    with imaplib.IMAP4(host, 143, timeout=30) as imap:
        imap.starttls(ssl_context=tls_context())
        imap.login(USER, PASSWORDS[USER])
        took = time.monotonic() - t0
        imap.logout()
    return took


def _smtp_auth_seconds(host: str) -> tuple[float, float]:
    """``(AUTH alone, connect to authenticated)``: the AUTH command is what the DB serves
    (dovecot's passdb); the connection before it also waits for smtpd's DNS lookup of the
    client, which a dead DNS server slows (see LOGIN_BUDGET)."""
    t0 = time.monotonic()
    with smtplib.SMTP(host, 587, timeout=30) as smtp:
        smtp.ehlo("tester.lab.test")
        smtp.starttls(context=tls_context())
        smtp.ehlo("tester.lab.test")
        t_auth = time.monotonic()
        smtp.login(USER, PASSWORDS[USER])
        done = time.monotonic()
        return done - t_auth, done - t0


def _delivery_seconds(host: str) -> float:
    """Send to port 25 of ``host`` and wait until IMAP on the same node shows the message."""
    subject = f"dbdown-{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    send_mail(host, USER, subject)
    wait_for(lambda: subject in imap_subjects(host, USER), timeout=60, interval=0.3)
    return time.monotonic() - t0


def _smtp_figures(ip: str) -> dict:
    runs = [_smtp_auth_seconds(ip) for _ in range(2)]
    return {
        "smtp_auth_s": [round(a, 3) for a, _ in runs],
        "smtp_session_s": [round(t, 3) for _, t in runs],
    }


def _measure(lab) -> dict:
    out = {}
    for node in MAIL_NODES:
        ip = lab.ip(node)
        out[node] = {
            # twice: the first call may pay the connect timeout, later ones must not
            "imap_login_s": [round(_imap_login_seconds(ip), 3) for _ in range(2)],
            **_smtp_figures(ip),
            "delivery_s": round(_delivery_seconds(ip), 3),
        }
    return out


def _check(figures: dict, case: str) -> None:
    print(f"\n{case}: {figures}")
    for node, f in figures.items():
        for key in ("imap_login_s", "smtp_auth_s"):
            assert max(f[key]) < LOGIN_BUDGET, f"{case}: {node} {key} {f[key]} s"


@pytest.fixture
def primary_db(lab):
    primary = "ns1"
    assert nspawn_host(primary, lab.lab.name).service("mariadb").is_running
    yield primary
    lab.cli("heal")
    lab.run(primary, "systemctl", "start", "mariadb")
    wait_for(lambda: nspawn_host(primary, lab.lab.name).service("mariadb").is_running, timeout=60)


def test_every_db_server_is_listed_nearest_first(lab):
    """mx1 (dc1) reads ns1 first, mx2 (dc2) ns2 first; both list both."""
    want = {"mx1": ["10.88.0.21", "10.88.0.22"], "mx2": ["10.88.0.22", "10.88.0.21"]}
    for node, hosts in want.items():
        cf = lab.run(node, "cat", "/etc/postfix/sql/virtual_mailboxes.cf").stdout
        assert f"hosts = {' '.join(hosts)}" in cf, cf
        assert "option_file = /etc/postfix/sql/client.cnf" in cf
        cnf = lab.run(node, "cat", "/etc/postfix/sql/client.cnf").stdout
        assert "connect-timeout = 1" in cnf
        conf = lab.run(node, "cat", "/etc/dovecot/dovecot-sql.conf.ext").stdout
        connect = next(line for line in conf.splitlines() if line.startswith("connect ="))
        assert connect.startswith(f"connect = host={hosts[0]} host={hosts[1]} "), connect
        assert "connect_timeout=1" in connect


def test_primary_mariadb_stopped(lab, primary_db):
    _check(_measure(lab), "healthy")
    url = f"https://{lab.ip(primary_db)}/postfixadmin/login.php"
    assert http_get(url)[0] == 200
    assert lab.run(primary_db, "systemctl", "stop", "mariadb").returncode == 0
    _check(_measure(lab), "primary MariaDB stopped")
    # Postfix Admin says that changes wait for the primary, instead of a PHP error
    status, body = http_get(url)
    assert status == 503 and "database primary is not reachable" in body, (status, body[:400])


def test_primary_cut_off(lab, primary_db):
    """Nothing answers from ns1 (its packets dropped): each connect to it times out."""
    for node in MAIL_NODES:
        lab.cli("partition", node, primary_db)
    _check(_measure(lab), "primary cut off from the mail pair")
