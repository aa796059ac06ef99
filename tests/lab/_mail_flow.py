"""A sending MTA in miniature, for the mail-under-failover test and bench/failover_bench.py.

It behaves like a real MTA that relays to the cluster: each message has one Message-ID for
its whole life; to deliver it the sender looks up the domain's MX at a DNS server of the lab,
tries the MX host's A records in random order (DNS round robin), and when no address takes
the message it waits and tries again (a real MTA's queue retry, compressed to fractions of
a second). A message counts as accepted when the server answered 250 to the end of DATA.

Delivery is counted in the recipient's Maildir on the shared store (what dovecot serves),
one file per delivered copy, by Message-ID.
"""

from __future__ import annotations

import email.parser
import pathlib
import random
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

import dns.message
import dns.query
import dns.rdatatype


def resolve(server: str, name: str, rtype: str, timeout: float = 0.5) -> list[str]:
    """Answers of ``name``/``rtype`` at ``server`` as text (MX: the exchange name)."""
    resp = dns.query.udp(dns.message.make_query(name, rtype), server, timeout=timeout)
    out = []
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rtype):
            for rdata in rrset:
                text = rdata.exchange.to_text() if rtype == "MX" else rdata.to_text()
                out.append(text.rstrip("."))
    return out


@dataclass
class Attempt:
    """One SMTP connection made for a message: where, when, how it ended."""

    ip: str
    started: float
    outcome: str


@dataclass
class Message:
    number: int
    message_id: str
    first_try: float
    accepted_at: float | None = None
    accepted_by: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


class Sender(threading.Thread):
    """Sends one message after another to ``rcpt`` until stopped, each until accepted."""

    def __init__(
        self,
        dns_server: str,
        rcpt: str,
        tag: str,
        interval: float = 0.1,
        smtp_timeout: float = 3.0,
        retry_delay: float = 0.3,
    ):
        super().__init__(daemon=True, name=f"sender-{tag}")
        self.dns_server = dns_server
        self.rcpt = rcpt
        self.domain = rcpt.split("@", 1)[1]
        self.tag = tag
        self.interval = interval
        self.smtp_timeout = smtp_timeout
        self.retry_delay = retry_delay
        self.messages: list[Message] = []
        self.errors: list[str] = []
        self._stop_sending = threading.Event()
        self._give_up = threading.Event()

    # -- control
    def stop(self, drain_timeout: float = 60.0) -> None:
        """No new message; the one in flight keeps its retries for up to ``drain_timeout``."""
        self._stop_sending.set()
        self.join(drain_timeout)
        self._give_up.set()
        self.join(10)

    # -- sending
    def addresses(self) -> list[str]:
        ips = []
        for host in resolve(self.dns_server, self.domain, "MX"):
            ips += resolve(self.dns_server, host, "A")
        random.shuffle(ips)
        return ips

    def compose(self, number: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"sender-{self.tag}@outside.invalid"
        msg["To"] = self.rcpt
        msg["Subject"] = f"failover flow {self.tag} #{number}"
        msg["Message-ID"] = f"<flow-{self.tag}-{number}@sender.invalid>"
        msg.set_content(f"message {number} of flow {self.tag}\n")
        return msg

    def try_once(self, ip: str, msg: EmailMessage) -> str:
        try:
            with smtplib.SMTP(ip, 25, timeout=self.smtp_timeout) as smtp:
                smtp.ehlo("sender.invalid")
                smtp.send_message(msg)
            return "accepted"
        except smtplib.SMTPResponseException as exc:
            return f"{exc.smtp_code} {exc.smtp_error[:60]!r}"
        except (OSError, smtplib.SMTPException) as exc:
            return f"{type(exc).__name__}: {exc}"[:100]

    def deliver(self, number: int) -> None:
        msg = self.compose(number)
        rec = Message(number, msg["Message-ID"], time.time())
        self.messages.append(rec)
        while not self._give_up.is_set():
            try:
                ips = self.addresses()
            except Exception as exc:  # DNS server busy or away: like any MTA, try later
                self.errors.append(f"#{number}: DNS: {type(exc).__name__}")
                ips = []
            for ip in ips:
                attempt = Attempt(ip, time.time(), "")
                attempt.outcome = self.try_once(ip, msg)
                rec.attempts.append(attempt)
                if attempt.outcome == "accepted":
                    rec.accepted_at, rec.accepted_by = time.time(), ip
                    return
            time.sleep(self.retry_delay)

    def run(self) -> None:
        number = 0
        while not self._stop_sending.is_set():
            self.deliver(number)
            number += 1
            time.sleep(self.interval)

    # -- results
    def accepted(self) -> list[Message]:
        return [m for m in self.messages if m.accepted_at is not None]

    def retried(self) -> list[Message]:
        return [m for m in self.accepted() if len(m.attempts) > 1]


def maildir_of(lab, address: str) -> pathlib.Path:
    """Host path of ``address``'s Maildir in the lab's shared store (LabHandle ``lab``)."""
    local, domain = address.split("@", 1)
    return lab.lab.dir / "shared" / "vmail" / "mailboxes" / domain / local / "Maildir"


def maildir_copies(maildir: pathlib.Path, tag: str) -> dict[str, int]:
    """Message-ID -> number of delivered copies of flow ``tag`` in ``maildir`` (new and cur)."""
    parser = email.parser.BytesHeaderParser()
    prefix = f"<flow-{tag}-"
    counts: dict[str, int] = {}
    for sub in ("new", "cur"):
        folder = maildir / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                with path.open("rb") as fh:
                    mid = parser.parse(fh).get("Message-ID", "")
            except OSError:  # moved from new/ to cur/ by a reader meanwhile
                continue
            if mid.startswith(prefix):
                counts[mid] = counts.get(mid, 0) + 1
    return counts


def delivered_copies(maildir: pathlib.Path, sender: Sender, timeout: float, settle: float = 2):
    """Copies per Message-ID once every message ``sender`` got accepted is in ``maildir`` (or
    ``timeout`` passed), counted again ``settle`` seconds later: a late duplicate, such as
    mx1's queue delivered after its return, shows up in the second count."""
    accepted = {m.message_id for m in sender.accepted()}
    deadline = time.monotonic() + timeout
    while not accepted <= set(maildir_copies(maildir, sender.tag)):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    time.sleep(settle)
    return maildir_copies(maildir, sender.tag)
