"""rspamd on the mail pair (issue 13.1, docs/spam-dkim.md), against the real daemons.

- the DKIM key of every domain is the same file on mx1 and mx2 (0640, owner _rspamd), its
  public half the pillar's `mailcluster_dkim:<domain>:txt`;
- a message sent through submission (587, SMTP AUTH as a lab mailbox, smtplib) and fetched by
  IMAP carries a DKIM signature that dkimpy verifies, against the TXT record that ns1 and ns2
  each serve (dnspython at each server) and against the pillar's record, for a domain with
  the cluster's selector and one with its own; a changed body fails the check;
- mail from outside on port 25 is scanned (rspamd's headers) and not signed; the time rspamd
  adds per message is measured and bounded (the lab has no internet: RBL lookups must not
  stall);
- with rspamd stopped, mail is still accepted at once (milter_default_action accept);
- the GTUBE test message is refused on port 25 with a 5xx, on both nodes;
- a domain added to pillar gets its key made on the master and installed on both nodes in the
  same apply, and rspamd signs its mail;
- an apply that rewrites the key files shows no private key text in its output, the master's
  job cache, or what the mail nodes' minion log, syslog and rspamd log got meanwhile; a second
  apply has 0 changes.
"""

from __future__ import annotations

import base64
import json
import smtplib
import time
import uuid
from email.message import EmailMessage

import dkim
import pytest
from _roles_helpers import (
    LOCAL_PILLAR,
    PASSWORDS,
    apply_all,
    fetch_raw,
    salt_call_json,
    send_message,
    served_txt,
    state_results,
    wait_for,
)
from checks import assert_file, nspawn_host

pytestmark = pytest.mark.lab

MAIL = ("mx1", "mx2")
DNS = ("ns1", "ns2")
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def dkim_pillar(lab):
    """{domain: {selector, txt}} as ns1 sees it (a node without role mail: no private key)."""
    data = salt_call_json(lab, "ns1", "pillar.get", "mailcluster_dkim", "unmask=True")
    assert data and all(set(v) == {"selector", "txt"} for v in data.values()), data
    return data


def _message(sender, rcpt, subject, body="lab test message\n"):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    msg["Message-ID"] = f"<{uuid.uuid4()}@lab.test>"
    msg.set_content(body)
    return msg


def test_the_key_is_the_same_on_both_mail_nodes(lab, dkim_pillar):
    for domain, entry in sorted(dkim_pillar.items()):
        path = f"/var/lib/rspamd/dkim/{domain}.{entry['selector']}.key"
        seen = {}
        for node in MAIL:
            host = nspawn_host(node)
            assert_file(host, path, 0o640, "_rspamd", "_rspamd")
            seen[node] = host.file(path).sha256sum
        assert seen["mx1"] == seen["mx2"], domain
        # its public half is the one the pillar (and so the zone) publishes
        der = lab.run(
            "mx1", "sh", "-c", f"openssl pkey -in {path} -pubout -outform DER | base64 -w0"
        ).stdout.strip()
        assert entry["txt"] == f"v=DKIM1; k=rsa; p={der}", domain


@pytest.mark.parametrize(
    "node,sender,rcpt",
    [
        ("mx1", "alice@example.test", "bob@example.test"),
        # sales.test signs under its own selector (pillar rspamd:dkim:domains)
        ("mx2", "dave@sales.test", "alice@example.test"),
    ],
)
def test_submitted_mail_is_signed_and_verifies(lab, dkim_pillar, node, sender, rcpt):
    domain = sender.split("@")[1]
    subject = f"dkim {node} {uuid.uuid4().hex[:8]}"
    send_message(lab.ip(node), _message(sender, rcpt, subject), 587, (sender, PASSWORDS[sender]))
    raw = wait_for(lambda: fetch_raw(lab.ip(node), rcpt, subject), timeout=30, interval=0.5)
    assert b"DKIM-Signature:" in raw, raw[:2000]
    entry = dkim_pillar[domain]
    name = f"{entry['selector']}._domainkey.{domain}"
    assert f"s={entry['selector']};".encode() in raw and f"d={domain};".encode() in raw
    # against the pillar's record
    assert dkim.verify(raw, dnsfunc=lambda n, timeout=5: entry["txt"].encode()), raw[:2000]
    # against the record each DNS server serves (the DNS role publishes it from the pillar)
    for server in DNS:
        served = wait_for(lambda s=server: served_txt(lab.ip(s), name), timeout=20)
        assert served == entry["txt"].encode(), (server, served)
        assert dkim.verify(raw, dnsfunc=lambda n, timeout=5, t=served: t), server
    # and a changed body no longer verifies (the check can fail)
    assert not dkim.verify(
        raw.replace(b"lab test message", b"lab test massage"),
        dnsfunc=lambda n, timeout=5: entry["txt"].encode(),
    )


def _inbound(lab, node, rcpt, subject):
    """A message from outside to ``node``'s port 25: (seconds DATA took to be accepted, the
    message as delivered)."""
    msg = _message("someone@outside.invalid", rcpt, subject)
    with smtplib.SMTP(lab.ip(node), 25, timeout=30) as smtp:
        smtp.ehlo("tester.outside.invalid")
        smtp.mail("someone@outside.invalid")
        smtp.rcpt(rcpt)
        t0 = time.monotonic()
        code, reply = smtp.data(msg.as_bytes())
        took = time.monotonic() - t0
    assert code == 250, (node, code, reply)
    return took, wait_for(lambda: fetch_raw(lab.ip(node), rcpt, subject), timeout=30)


def test_inbound_mail_is_scanned_not_signed_and_fast(lab):
    """Port 25 from the host (outside): rspamd's headers, no signature, and the time it adds."""
    rcpt = "bob@example.test"
    times = {}
    for node in MAIL:
        times[node], raw = _inbound(lab, node, rcpt, f"inbound {node} {uuid.uuid4().hex[:8]}")
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert b"X-Spam-Status:" in head and b"Authentication-Results:" in head, head
        assert b"DKIM-Signature:" not in head, head
    print(f"DATA -> 250 through rspamd: {times}")
    # the end of DATA waits for the scan: a few DNS lookups refused at once, not timeouts
    assert max(times.values()) < 2.0, times


def test_mail_flows_while_rspamd_is_down(lab):
    """milter_default_action accept: with rspamd stopped, mx2 takes mail at once, unscanned."""
    node, rcpt = "mx2", "bob@example.test"
    assert lab.run(node, "systemctl", "stop", "rspamd").returncode == 0
    try:
        took, raw = _inbound(lab, node, rcpt, f"no rspamd {uuid.uuid4().hex[:8]}")
        assert took < 2.0, took  # the refused milter connection costs nothing
        assert b"X-Spam-Status:" not in raw.split(b"\r\n\r\n", 1)[0]
    finally:
        assert lab.run(node, "systemctl", "start", "rspamd").returncode == 0
    # back in service: postfix reaches the milter again
    wait_for(lambda: lab.run(node, "nc", "-z", "127.0.0.1", "11332").returncode == 0, timeout=60)


@pytest.mark.parametrize("node", MAIL)
def test_gtube_is_rejected_on_port_25(lab, node):
    msg = _message("someone@outside.invalid", "bob@example.test", "gtube", f"{GTUBE}\n")
    with smtplib.SMTP(lab.ip(node), 25, timeout=30) as smtp:
        smtp.ehlo("tester.outside.invalid")
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.send_message(msg)
    assert 500 <= err.value.smtp_code < 600, err.value


def _job_cache_since(lab, marker):
    """Every file the master's job cache got since ``marker`` was touched, concatenated."""
    proc = lab.run(
        "salt",
        "sh",
        "-c",
        f"find /var/cache/salt/master/jobs -type f -newer {marker} -exec cat {{}} + | base64 -w0",
    )
    assert proc.returncode == 0, proc.stderr
    return base64.b64decode(proc.stdout.strip())


def _sizes(lab, node, paths):
    """{path: size} of the files that exist on the node."""
    out = lab.run(node, "sh", "-c", "stat -c '%n %s' " + " ".join(paths) + " 2>/dev/null").stdout
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}


def test_private_keys_stay_out_of_outputs_and_the_job_cache(lab, dkim_pillar):
    # the key lines as the mail nodes hold them (read there, never through the master)
    needles = set()
    for domain, entry in dkim_pillar.items():
        path = f"/var/lib/rspamd/dkim/{domain}.{entry['selector']}.key"
        pem = lab.run("mx1", "cat", path).stdout
        needles |= {line for line in pem.splitlines() if len(line) >= 16 and "-----" not in line}
    # the PEM lines that hold only the modulus may line up with the public TXT record's
    # base64 (seen: the zones' text in the job cache): those are public, not needles
    needles = {n for n in needles if not any(n in e["txt"] for e in dkim_pillar.values())}
    assert len(needles) > 20
    logs = ("/var/log/salt/minion", "/var/log/syslog", "/var/log/rspamd/rspamd.log")
    sizes = {node: _sizes(lab, node, logs) for node in MAIL}
    marker = f"/tmp/rspamd-test-{uuid.uuid4().hex}"
    assert lab.run("salt", "touch", marker).returncode == 0
    # make the apply rewrite every key file, so that a shown diff would carry the key
    for node in MAIL:
        for domain, entry in dkim_pillar.items():
            path = f"/var/lib/rspamd/dkim/{domain}.{entry['selector']}.key"
            lab.run(node, "sh", "-c", f"echo placeholder > {path}")
    outputs = []
    for extra in (["test=True"], []):
        ret, _ = apply_all(lab, "rspamd", *extra, target="mx*", expect=MAIL, timeout=300)
        outputs.append(ret)
    failed, changed = state_results(outputs[1])
    assert not failed, failed
    # one state writes every key file (issue 14.2), naming each rewritten file
    state_id = "rspamd-config-dkim-keys-mailcluster-files-dkim-keys"
    # (the minions' returns come in the order they arrive)
    mine = sorted(c for c in changed if state_id in c)
    assert mine == sorted(f"{n}: {state_id}" for n in MAIL), changed
    names = sorted(f"{d}.{e['selector']}.key" for d, e in dkim_pillar.items())
    for node in MAIL:
        st = next(v for k, v in outputs[1][node].items() if state_id in k)
        assert set(names) <= set(st["changes"]["write"]), st["changes"]
    cache = _job_cache_since(lab, marker)
    lab.run("salt", "rm", "-f", marker)
    # the scan reads the apply's returns: they name the key files' state
    assert state_id.encode() in cache, "not the apply's job files"
    for where, ret in (("test run", outputs[0]), ("apply", outputs[1])):
        text = json.dumps(ret)
        assert not [n for n in needles if n in text], f"a private key line in the {where} output"
    assert not [n for n in needles if n.encode() in cache], "a private key line in the job cache"
    for node in MAIL:  # what the minion (info), syslog and rspamd logged meanwhile
        for log, size in sizes[node].items():
            text = lab.run(node, "tail", "-c", f"+{size + 1}", log).stdout
            assert not [n for n in needles if n in text], f"a private key line in {node}:{log}"
    # the keys are back, and a second apply changes nothing
    again, _ = apply_all(lab, "rspamd", target="mx*", expect=MAIL, timeout=300)
    failed, changed = state_results(again)
    assert (failed, changed) == ([], []), (failed, changed)


NEW_DOMAIN = """\
mailcluster:
  domains:
    dkimnew.test:
      description: added by tests/lab/test_rspamd_dkim.py
rspamd:
  dkim:
    domains:
      dkimnew.test:
        selector: fresh
"""


def test_a_new_domain_gets_its_key_in_the_same_apply(lab):
    if LOCAL_PILLAR.exists():
        pytest.skip(f"{LOCAL_PILLAR} is in use")
    master_dir = "/var/lib/salt/mailcluster/dkim/dkimnew.test"
    path = "/var/lib/rspamd/dkim/dkimnew.test.fresh.key"
    lab.run("salt", "rm", "-rf", master_dir)
    try:
        LOCAL_PILLAR.write_text(NEW_DOMAIN)
        ret, seconds = apply_all(lab, "rspamd", target="mx*", expect=MAIL, timeout=300)
        failed, _ = state_results(ret)
        assert not failed, failed
        print(f"new domain: key made and installed on both nodes in {seconds:.1f} s")
        made = lab.run("salt", "stat", "-c", "%a", f"{master_dir}/fresh.key").stdout.strip()
        assert made == "600"
        digests = {n: lab.run(n, "sha256sum", path).stdout.split()[0] for n in MAIL}
        assert len(set(digests.values())) == 1, digests
        conf = lab.run("mx1", "cat", "/etc/rspamd/local.d/dkim_signing.conf").stdout
        assert '"dkimnew.test" {' in conf and 'selector = "fresh";' in conf
        # rspamd signs the new domain's mail at once (a scan as an authenticated user)
        msg = _message("erin@dkimnew.test", "bob@example.test", "new domain").as_bytes()
        proc = lab.lab.run(
            "mx1",
            ["rspamc", "-h", "127.0.0.1:11333", "--user", "erin@dkimnew.test", "--mime"],
            capture=True,
            input=msg.decode(),
        )
        assert "d=dkimnew.test" in proc.stdout and "s=fresh" in proc.stdout, proc.stdout
    finally:
        LOCAL_PILLAR.unlink(missing_ok=True)
        ret, _ = apply_all(lab, "rspamd", target="mx*", expect=MAIL, timeout=300)
        for node in MAIL:
            lab.run(node, "rm", "-f", path)
        lab.run("salt", "rm", "-rf", master_dir)
    assert not state_results(ret)[0]
