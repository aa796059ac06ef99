"""Role mail: postfix (SMTP, submission) and dovecot (IMAP, POP3, LMTP, ManageSieve) on the
shared Maildir store, rspamd as postfix's milter with the domains' DKIM keys."""

from checks import assert_file, assert_listening, assert_packages, assert_service


def check_postfix(host):
    assert_packages(host, "postfix", "postfix-mysql")
    assert_service(host, "postfix")
    assert_listening(host, "tcp:25", "tcp:587")
    proc = host.run("postfix check")
    assert proc.rc == 0 and not proc.stderr.strip(), f"postfix check: {proc.stderr}"


def check_dovecot(host):
    assert_packages(host, "dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd")
    assert_service(host, "dovecot")
    assert_listening(host, "tcp:143", "tcp:993", "tcp:110", "tcp:995", "tcp:4190")


def check_vmail_store(host):
    # the store mounted at /var/vmail (shared by the mail nodes), the Maildirs the vmail
    # user's only, with the same uid on every node
    assert host.mount_point("/var/vmail").exists, "the mail store is not mounted at /var/vmail"
    assert_file(host, "/var/vmail/mailboxes", 0o770, user="vmail", group="vmail")
    assert host.user("vmail").uid == 5000, "vmail is not uid 5000 on every node"


def check_rspamd(host):
    assert_packages(host, "rspamd")
    assert_service(host, "rspamd")
    assert host.socket("tcp://127.0.0.1:11332").is_listening, "rspamd's milter is not listening"


def check_dkim_keys(host):
    # the private keys, readable by rspamd alone
    assert_file(host, "/var/lib/rspamd/dkim", 0o750, user="_rspamd", group="_rspamd")
    keys = host.run("find /var/lib/rspamd/dkim -name '*.key'").stdout.split()
    assert len(keys) >= 2, f"DKIM keys: {keys}"
    for key in keys:
        assert_file(host, key, 0o640, user="_rspamd", group="_rspamd")
