"""Quotas and Sieve on the mail pair (issue 13, items 4 and 5), with real clients.

Three mailboxes of sales.test are made for the module the way Postfix Admin makes them (rows
in its `mailbox` and `alias` tables on the DB primary, outside pillar, so that the db role's
sync leaves them alone) and removed at the end with their Maildirs, scripts and indexes:

- `mcqs-full` with a 1 MiB quota: filled over its limit by port-25 mail to both nodes (the
  85 % and 95 % warnings arrive in its INBOX; the Maildir++ usage is one for both nodes),
  after which RCPT to it is refused with 552 5.2.2 on mx1 and mx2 while `mcqs-peer` still
  accepts; with dovecot's quota-status socket gone (dead) or silent, the recipient is
  accepted, at once or after mail:quota:status_timeout;
- `mcqs-sieve`: a script uploaded and activated with sieve-connect (STARTTLS, AUTH PLAIN as
  the mailbox) on mx1's ManageSieve files a message delivered by mx2 into a folder, and
  answers other mail with a vacation reply (sent through postfix to `mcqs-peer`).

Needs a converged lab (tests/lab/conftest.py). sieve-connect is installed on the salt node
(from the image's local repository) if it is missing.
"""

from __future__ import annotations

import functools
import imaplib
import os
import shlex
import smtplib
import socket
import time
import uuid
from email.message import EmailMessage

import pytest
from _roles_helpers import (
    apply_all,
    send_message,
    state_results,
    tls_context,
    wait_for,
    wait_port,
)

pytestmark = pytest.mark.lab

SUBNET = os.environ.get("MC_LAB_SUBNET", "10.88.0")
MX = {"mx1": f"{SUBNET}.11", "mx2": f"{SUBNET}.12"}
DOMAIN = "sales.test"
BOXES = {  # local part -> (password, quota in bytes; 0: the default, unlimited in the lab)
    "mcqs-full": ("mcqs-full-lab-pw", 1024 * 1024),
    "mcqs-peer": ("mcqs-peer-lab-pw", 0),
    "mcqs-sieve": ("mcqs-sieve-lab-pw", 0),
}
MAILDIRS = "/var/vmail/mailboxes"
INDEX = "/var/lib/dovecot/index"
POLICY_SOCKET = "/var/spool/postfix/private/quota-status"
CA = "/etc/pki/mailcluster/ca.crt"  # on the salt node (the master made the cluster CA)
FOLDER = "MCQS-Filtered"
SCRIPT = f"""require ["fileinto", "vacation"];
if header :contains "subject" "mcqs-filter" {{
  fileinto "{FOLDER}";
  stop;
}}
vacation :days 1 :subject "mcqs-away" :addresses ["mcqs-sieve@{DOMAIN}"]
  "Away (lab test of the vacation extension).";
"""


def addr(local: str) -> str:
    return f"{local}@{DOMAIN}"


def _ok(proc, what: str) -> str:
    assert proc.returncode == 0, f"{what}: rc {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _sql(lab, sql: str) -> str:
    return _ok(lab.lab.run("ns1", ["mysql", "-N", "postfixadmin"], capture=True, input=sql), sql)


def _remove(lab) -> None:
    """The test mailboxes' rows, Maildirs (shared store: once) and both nodes' indexes."""
    names = ", ".join(f"'{addr(b)}'" for b in BOXES)
    _sql(lab, f"DELETE FROM mailbox WHERE username IN ({names});")
    _sql(lab, f"DELETE FROM alias WHERE address IN ({names});")
    homes = [f"{MAILDIRS}/{DOMAIN}/{b}" for b in BOXES]
    _ok(lab.run("mx1", "rm", "-rf", *homes), "rm homes")
    for node in MX:
        _ok(lab.run(node, "rm", "-rf", *[f"{INDEX}/{DOMAIN}/{b}" for b in BOXES]), "rm index")


@pytest.fixture(scope="module")
def boxes(lab):
    for ip in MX.values():
        wait_port(ip, 4190, timeout=30)
    _remove(lab)  # leftovers of an interrupted run
    rows = []
    for local, (password, quota) in BOXES.items():
        hashed = _ok(
            lab.lab.run("ns1", ["openssl", "passwd", "-6", "-stdin"], capture=True, input=password),
            "openssl passwd",
        ).strip()
        rows.append(
            "INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain,"
            f" created, modified, active) VALUES ('{addr(local)}', '{hashed}', '{local}',"
            f" '{DOMAIN}/{local}/', {quota}, '{local}', '{DOMAIN}', NOW(), NOW(), 1);"
            "INSERT INTO alias (address, goto, domain, created, modified, active) VALUES"
            f" ('{addr(local)}', '{addr(local)}', '{DOMAIN}', NOW(), NOW(), 1);"
        )
    _sql(lab, "\n".join(rows))
    # both nodes see them (mx2 reads the replica first), with the quota rule of the row
    for node in MX:
        wait_for(
            lambda n=node: "quota_rule" in lab.run(n, "doveadm", "user", addr("mcqs-full")).stdout,
            timeout=30,
        )
    yield lab
    _remove(lab)


# ------------------------------------------------------------------ clients
def message(sender: str, rcpt: str, subject: str, size: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@lab.test>"
    # plain 7-bit lines: the stored size is the body's plus the headers
    line = "quota filler " + "x" * 64 + "\n"
    msg.set_content(f"lab test {subject}\n" + line * (size // len(line)))
    return msg


# sent without the SIZE parameter: RCPT then sees only the mailbox's usage
smtp_send = functools.partial(send_message, announce_size=False)


def rcpt(host: str, rcpt_to: str, size: int = 0) -> tuple[int, str, float]:
    """MAIL (with SIZE= when given) and RCPT on port 25, no DATA: (code, text, seconds the
    RCPT took)."""
    with smtplib.SMTP(host, 25, timeout=60) as smtp:
        smtp.ehlo("tester.lab.test")
        smtp.mail("tester@outside.invalid", [f"SIZE={size}"] if size else [])
        t0 = time.monotonic()
        code, text = smtp.rcpt(rcpt_to)
        seconds = time.monotonic() - t0
        smtp.rset()
        return code, text.decode(), seconds


def subjects(host: str, local: str, folder: str = "INBOX") -> list[str]:
    with imaplib.IMAP4(host, 143, timeout=30) as imap:
        imap.starttls(ssl_context=tls_context())
        imap.login(addr(local), BOXES[local][0])
        typ, _ = imap.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return []
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(parts[0][1].decode().split(":", 1)[1].strip())
        return out


def quota_used(lab, node: str) -> tuple[int, int]:
    """(used, limit) in KiB of mcqs-full's STORAGE, as dovecot on ``node`` reads it."""
    out = _ok(lab.run(node, "doveadm", "-f", "tab", "quota", "get", "-u", addr("mcqs-full")), "q")
    for line in out.splitlines()[1:]:
        cols = line.split("\t")
        if cols[1] == "STORAGE":
            return int(cols[2]), int(cols[3])
    raise AssertionError(out)


# ------------------------------------------------------------------ quota
def test_full_mailbox_refused_at_rcpt(boxes):
    lab = boxes
    sender = "tester@outside.invalid"
    full = addr("mcqs-full")
    since = f"@{int(time.time()) - 1}"
    # 700 KiB (68 % of 1 MiB), then 250 KiB (93 %: the 85 % warning), both through mx1
    for n, (kib, node) in enumerate([(700, "mx1"), (250, "mx1"), (150, "mx2")], start=1):
        smtp_send(MX[node], message(sender, full, f"mcqs-fill-{n}", kib * 1024))
        wait_for(lambda n=n: f"mcqs-fill-{n}" in subjects(MX["mx1"], "mcqs-full"), timeout=30)
        if n == 2:
            # the usage mx1's deliveries wrote is what mx2 counts (maildirsize on the store)
            used, limit = quota_used(lab, "mx2")
            assert limit == 1024 and 0.85 * limit < used < limit, (used, limit)
            wait_for(
                lambda: "Your mailbox is 85% full" in subjects(MX["mx2"], "mcqs-full"), timeout=30
            )
            # under the limit, but a declared size that would not fit (even with the grace)
            # is refused at RCPT; one that fits is not
            code, text, _ = rcpt(MX["mx2"], full, size=300 * 1024)
            assert (code, text.split()[0]) == (552, "5.2.2"), (code, text)
            assert rcpt(MX["mx2"], full, size=10 * 1024)[0] == 250
    # the third (150 KiB, via mx2) fits in quota_grace (10 %) and takes it over the limit
    wait_for(lambda: "Your mailbox is 95% full" in subjects(MX["mx1"], "mcqs-full"), timeout=30)
    used, limit = quota_used(lab, "mx1")
    assert used > limit, (used, limit)
    for node in MX:  # the warning script ran cleanly on both nodes
        log = lab.run(node, "journalctl", "-q", "--no-pager", "--since", since, "-u", "dovecot")
        errors = [x for x in log.stdout.splitlines() if "quota-warning" in x and "rror" in x]
        assert errors == [], errors
    for node, ip in MX.items():
        code, text, seconds = rcpt(ip, full)
        print(f"{node}: RCPT {full}: {code} {text} ({seconds:.3f} s)")
        assert (code, text.split()[0]) == (552, "5.2.2"), (node, code, text)
        assert "Mailbox is full" in text
        code, text, _ = rcpt(ip, addr("mcqs-peer"))
        assert code == 250, (node, code, text)
        # an alias is no dovecot user: quota-status leaves it to postfix's maps (DUNNO)
        code, text, _ = rcpt(ip, addr("postmaster"))
        assert code == 250, (node, code, text)
    # nothing more reached the full mailbox, the peer still takes mail
    smtp_send(MX["mx2"], message(sender, addr("mcqs-peer"), "mcqs-peer-ok"))
    wait_for(lambda: "mcqs-peer-ok" in subjects(MX["mx1"], "mcqs-peer"), timeout=30)
    assert len(subjects(MX["mx1"], "mcqs-full")) == 5  # 3 fillers, 2 warnings


def _postfix_reload(lab, node: str) -> None:
    """New smtpd processes: a running one keeps its policy connection (max_idle)."""
    _ok(lab.run(node, "postfix", "reload"), "postfix reload")
    time.sleep(1)


def test_dead_or_silent_quota_service_accepts(boxes):
    lab, node, ip = boxes, "mx2", MX["mx2"]
    full = addr("mcqs-full")
    assert rcpt(ip, full)[0] == 552  # over quota (previous test)
    parked = POLICY_SOCKET + ".mcqs"
    # a listener in the service's place that takes connections and never answers (it ends
    # by itself after 60 s; the test stops it sooner by its PID)
    silent = (
        "import os, socket, time\n"
        f"p = {POLICY_SOCKET!r}\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.bind(p)\n"
        "os.chmod(p, 0o666)\n"
        "s.listen(8)\n"
        "s.settimeout(1)\n"
        "conns, end = [], time.monotonic() + 60\n"
        "while time.monotonic() < end:\n"
        "    try:\n"
        "        conns.append(s.accept()[0])\n"
        "    except OSError:\n"
        "        pass\n"
    )
    pid = None
    try:
        _ok(lab.run(node, "mv", POLICY_SOCKET, parked), "park the socket")
        _postfix_reload(lab, node)
        code, text, dead_s = rcpt(ip, full)
        print(f"quota-status dead: RCPT {code} {text} ({dead_s:.3f} s)")
        assert code == 250 and dead_s < 2, (code, text, dead_s)
        start = f"python3 -c {shlex.quote(silent)} >/dev/null 2>&1 & echo $!"
        pid = _ok(lab.run(node, "sh", "-c", start), "silent listener").strip()
        wait_for(lambda: lab.run(node, "test", "-S", POLICY_SOCKET).returncode == 0, timeout=10)
        _postfix_reload(lab, node)
        code, text, silent_s = rcpt(ip, full)
        print(f"quota-status silent: RCPT {code} {text} ({silent_s:.3f} s)")
        assert code == 250 and 4.5 < silent_s < 8, (code, text, silent_s)
    finally:
        if pid:
            lab.run(node, "kill", pid)
        back = f"if [ -S {parked} ]; then rm -f {POLICY_SOCKET}; mv {parked} {POLICY_SOCKET}; fi"
        lab.run(node, "sh", "-c", back)
        _postfix_reload(lab, node)
    assert rcpt(ip, full)[0] == 552  # the real service answers again


# ------------------------------------------------------------------ sieve
def sieve_connect(lab, *args: str) -> str:
    """sieve-connect on the salt node against mx1's ManageSieve, as mcqs-sieve (password on
    fd 0), STARTTLS verified against the cluster CA, no AUTH without TLS."""
    cmd = [
        "sieve-connect",
        "--server",
        MX["mx1"],
        "--port",
        "4190",
        "--user",
        addr("mcqs-sieve"),
        "--passwordfd",
        "0",
        "--tlscafile",
        CA,
        "--noclearauth",
        *args,
    ]
    proc = lab.lab.run("salt", cmd, capture=True, input=BOXES["mcqs-sieve"][0] + "\n", timeout=60)
    return _ok(proc, " ".join(args))


def managesieve_greeting(host: str) -> str:
    """What ManageSieve offers before STARTTLS (up to its first OK line)."""
    with socket.create_connection((host, 4190), timeout=10) as sock:
        data = b""
        while b"\nOK" not in data and not data.startswith(b"OK"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode()


def test_sieve_script_from_mx1_applies_on_mx2(boxes):
    lab = boxes
    for ip in MX.values():  # no AUTH offered before STARTTLS
        greeting = managesieve_greeting(ip)
        assert '"STARTTLS"' in greeting and '"SASL" ""' in greeting, greeting
    _ok(
        lab.run(
            "salt",
            "sh",
            "-c",
            "dpkg -s sieve-connect >/dev/null 2>&1 ||"
            " apt-get install -y -q --no-install-recommends sieve-connect",
            timeout=180,
        ),
        "install sieve-connect",
    )
    _ok(
        lab.lab.run("salt", ["sh", "-c", "cat > /tmp/mcqs.sieve"], capture=True, input=SCRIPT),
        "script file",
    )
    sieve_connect(lab, "--localsieve", "/tmp/mcqs.sieve", "--remotesieve", "mcqs", "--upload")
    sieve_connect(lab, "--remotesieve", "mcqs", "--activate")
    listed = sieve_connect(lab, "--list")
    assert "mcqs" in listed and "ACTIVE" in listed.upper(), listed
    # the active script as mx2 sees it, in the home on the shared store
    home = f"{MAILDIRS}/{DOMAIN}/mcqs-sieve"
    link = _ok(lab.run("mx2", "readlink", f"{home}/.dovecot.sieve"), "readlink").strip()
    assert link.endswith("sieve/mcqs.sieve"), link
    # filed into the folder by mx2's LMTP
    smtp_send(MX["mx2"], message("tester@outside.invalid", addr("mcqs-sieve"), "mcqs-filter 1"))
    wait_for(lambda: "mcqs-filter 1" in subjects(MX["mx1"], "mcqs-sieve", FOLDER), timeout=30)
    assert "mcqs-filter 1" not in subjects(MX["mx1"], "mcqs-sieve")
    # anything else gets the vacation reply, sent through postfix (to mcqs-peer, via mx2)
    peer = ("mcqs-peer@" + DOMAIN, BOXES["mcqs-peer"][0])
    smtp_send(MX["mx2"], message(peer[0], addr("mcqs-sieve"), "mcqs-hello"), 587, login=peer)
    wait_for(lambda: "mcqs-hello" in subjects(MX["mx1"], "mcqs-sieve"), timeout=30)
    wait_for(lambda: "mcqs-away" in subjects(MX["mx2"], "mcqs-peer"), timeout=30)


def _discarded(lab, node: str, message_id: str, since: str) -> int:
    """How many times LMTP on ``node`` discarded ``message_id`` as a duplicate since ``since``
    (dovecot's log line of the global script's discard action)."""
    out = lab.run(node, "journalctl", "-u", "dovecot", "--since", since, "-o", "cat").stdout
    return sum(f"msgid={message_id}: discard action" in line for line in out.splitlines())


def test_a_message_given_twice_is_delivered_once(boxes):
    """mail:dovecot:dedup: one message (one Message-ID) handed to mx1, then to mx2, then to mx1
    again, as a sending MTA does when a node dies between queueing it and answering 250: it
    lands in the mailbox once, the user's own script (the fileinto of the test above) runs for
    it once, and each later copy is discarded by the LMTP that got it. The same Message-ID
    still reaches another mailbox, and mail without a Message-ID is never taken for a
    duplicate."""
    lab = boxes
    since = lab.run("mx1", "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    msg = message("tester@outside.invalid", addr("mcqs-sieve"), "mcqs-filter dup")
    mid = msg["Message-ID"]
    smtp_send(MX["mx1"], msg)
    wait_for(lambda: "mcqs-filter dup" in subjects(MX["mx2"], "mcqs-sieve", FOLDER), timeout=30)
    # each copy after the first delivery, as the sender's retry comes (seconds later)
    expected = {"mx1": 0, "mx2": 0}

    def seen():
        got = {n: _discarded(lab, n, mid, since) for n in MX}
        assert got == expected, f"discarded as duplicates: {got}, expected {expected}"
        return got

    for node in ("mx2", "mx1"):
        smtp_send(MX[node], msg)
        expected[node] += 1
        wait_for(seen, timeout=30)
    filed = subjects(MX["mx2"], "mcqs-sieve", FOLDER)
    assert filed.count("mcqs-filter dup") == 1, filed
    assert "mcqs-filter dup" not in subjects(MX["mx2"], "mcqs-sieve")
    # the same message to another mailbox: delivered there (one list of IDs per mailbox)
    del msg["To"]
    msg["To"] = addr("mcqs-peer")
    smtp_send(MX["mx2"], msg)
    wait_for(lambda: "mcqs-filter dup" in subjects(MX["mx1"], "mcqs-peer"), timeout=30)
    # no Message-ID: each copy is delivered (postfix adds none for mail from outside)
    bare = message("tester@outside.invalid", addr("mcqs-peer"), "mcqs-no-id")
    del bare["Message-ID"]
    for node in ("mx1", "mx2"):
        smtp_send(MX[node], bare)
    wait_for(
        lambda: subjects(MX["mx1"], "mcqs-peer").count("mcqs-no-id") == 2,
        timeout=30,
    )


def test_mail_states_second_apply_changes_nothing(boxes):
    """The mail states applied twice: the second changes nothing (the first converges what a
    lab booted before the last edit of the tree still lacks)."""
    for run in ("first", "second"):
        ret, seconds = apply_all(
            boxes, "mail.dovecot,mail.postfix", target="mx*", expect=tuple(MX), timeout=300
        )
        failed, changed = state_results(ret)
        print(f"{run} apply of mail.dovecot,mail.postfix: {seconds:.1f} s, {changed}")
        assert not failed, "\n".join(failed)
    assert changed == [], changed
