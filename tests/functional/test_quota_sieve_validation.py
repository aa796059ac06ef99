"""Quotas and Sieve (issue 13, items 4 and 5): bad `mail:quota` / sieve pillar is refused
naming the key, before any state runs; good values reach dovecot's and postfix's files.

- a table of bad values, each merged into the lab pillar and given to
  ``mailcluster.validate`` in one masterless minion (as tests/functional/test_roles_validation.py
  does): the error names the full key and says what is allowed;
- one of them end to end: a highstate (test=True) stops with the key named;
- the rendered dovecot.conf, dovecot-sql.conf.ext and main.cf of mx1 with the lab's pillar
  and with pillar moving every quota key and turning ManageSieve off.
"""

import pathlib
import re

import pytest
from test_roles_support import pillar_copy, run_node

HERE = pathlib.Path(__file__).resolve().parent

# (pillar merged into the lab pillar (YAML), text the error must contain)
BAD = {
    "default-negative": (
        "mail: {quota: {default_mb: -1}}",
        "mail:quota:default_mb: must be >= 0 (got -1)",
    ),
    "default-not-integer": (
        "mail: {quota: {default_mb: 1.5}}",
        "mail:quota:default_mb: must be integer (got 1.5)",
    ),
    "default-with-unit": (
        "mail: {quota: {default_mb: 1G}}",
        'mail:quota:default_mb: must be integer (got "1G")',
    ),
    "warning-zero": ("mail: {quota: {warnings: [95, 0]}}", "mail:quota:warnings:1: must be >= 1"),
    "warning-over-100": (
        "mail: {quota: {warnings: [101]}}",
        "mail:quota:warnings:0: must be <= 100 (got 101)",
    ),
    "warning-not-number": (
        "mail: {quota: {warnings: [95%]}}",
        'mail:quota:warnings:0: must be integer (got "95%")',
    ),
    "warning-twice": ("mail: {quota: {warnings: [90, 90]}}", "mail:quota:warnings:"),
    "warnings-not-a-list": ("mail: {quota: {warnings: 90}}", "mail:quota:warnings: must be array"),
    "grace-negative": (
        "mail: {quota: {grace_percent: -10}}",
        "mail:quota:grace_percent: must be >= 0",
    ),
    "reject-code": ("mail: {quota: {reject_code: 550}}", "mail:quota:reject_code: must be one of"),
    "status-timeout-zero": (
        "mail: {quota: {status_timeout: 0}}",
        "mail:quota:status_timeout: must be >= 1",
    ),
    "warning-script-relative": (
        "mail: {quota: {warning_script: warn.sh}}",
        "mail:quota:warning_script: must be an absolute path",
    ),
    "quota-typo": ("mail: {quota: {default_mib: 10}}", "mail:quota:default_mib: unknown key"),
    "lookup-warning": (
        "mail: {lookup: {quota: {warnings: [200]}}}",
        "mail:lookup:quota:warnings:0: must be <= 100",
    ),
    "protocol-name": (
        "mail: {dovecot: {protocols: [imap, lmtp, managesieve]}}",
        "mail:dovecot:protocols:2: must be one of",
    ),
    "dedup-period-words": (
        "mail: {dovecot: {dedup: {period: 2 days}}}",
        "mail:dovecot:dedup:period: must be a whole number followed by s, m, h or d",
    ),
    "dedup-period-bare-number": (
        "mail: {dovecot: {dedup: {period: 3600}}}",
        "mail:dovecot:dedup:period: must be a whole number followed by s, m, h or d (such as 2d)"
        " (got 3600)",
    ),
    "dedup-period-zero": (
        "mail: {dovecot: {dedup: {period: 0d}}}",
        "mail:dovecot:dedup:period: must be a whole number followed by",
    ),
    "dedup-enabled-word": (
        "mail: {dovecot: {dedup: {enabled: sometimes}}}",
        'mail:dovecot:dedup:enabled: must be boolean (got "sometimes")',
    ),
    "dedup-script-not-sieve": (
        "mail: {dovecot: {dedup: {script: /etc/dovecot/dedup.txt}}}",
        "mail:dovecot:dedup:script: must be an absolute path ending in .sieve",
    ),
    "dedup-script-relative": (
        "mail: {dovecot: {dedup: {script: dedup.sieve}}}",
        "mail:dovecot:dedup:script: must be an absolute path ending in .sieve",
    ),
    "dedup-typo": (
        "mail: {dovecot: {dedup: {days: 2}}}",
        "mail:dovecot:dedup:days: unknown key",
    ),
    "mailbox-quota-not-integer": (
        "mailcluster: {domains: {example.test: {mailboxes: [{name: alice, quota_mb: 0.5}]}}}",
        "mailcluster:domains:example.test:mailboxes:0:quota_mb: must be integer",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_quota_value_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors
    assert all(re.match(r"^[a-z][a-z0-9_]*(:[^\s:]+)*: \S", e) for e in errors), errors


def test_bad_quota_stops_the_highstate(tmp_path):
    extra, message = BAD["warning-over-100"]
    errors, result = run_node(
        tmp_path,
        "mx1",
        [["mailcluster.validate"], ["state.apply", [], {"test": True}]],
        pillar_copy(tmp_path, extra),
    )
    assert any(message in e for e in errors), errors
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        assert all(not v["changes"] for v in result.values())
        text = "\n".join(v["comment"] for v in result.values())
    else:  # role SLS files refused to render: no state ran
        text = "\n".join(result)
    assert message in text, text


def _files(tmp_path, extra):
    (templates,) = run_node(tmp_path, "mx1", [["templates"]], pillar_copy(tmp_path, extra))
    return {name: templates[name]["text"] for name in templates}


def test_lab_pillar_renders_quota_and_sieve(tmp_path):
    files = _files(tmp_path, None)
    dovecot = files["/etc/dovecot/dovecot.conf"]
    assert "protocols = imap pop3 lmtp sieve" in dovecot
    assert re.search(r"inet_listener sieve \{\s+port = 4190", dovecot)
    assert "quota = maildir:User quota" in dovecot
    assert "quota_rule = *:storage=0M" in dovecot
    assert "quota_warning = storage=95%% quota-warning 95 %u" in dovecot
    assert "quota_warning2 = storage=85%% quota-warning 85 %u" in dovecot
    assert 'quota_status_overquota = "552 5.2.2 Mailbox is full"' in dovecot
    assert "quota_status_nouser = DUNNO" in dovecot
    assert re.search(r"protocol lmtp \{[^}]*mail_plugins = \$mail_plugins sieve", dovecot)
    assert "sieve = file:~/sieve;active=~/.dovecot.sieve" in dovecot
    # duplicate deliveries: the global script before the user's own (mail:dovecot:dedup)
    assert "sieve_before = /etc/dovecot/sieve/before/dedup.sieve" in dovecot
    assert "sieve_duplicate_default_period = 2d" in dovecot
    assert "sieve_duplicate_max_period = 2d" in dovecot
    assert "unix_listener /var/spool/postfix/private/quota-status" in dovecot
    sql = files["/etc/dovecot/dovecot-sql.conf.ext"]
    assert "IF(quota > 0, CONCAT('*:bytes=', quota), NULL) AS quota_rule" in sql
    main = files["/etc/postfix/main.cf"]
    assert (
        "reject_unauth_destination,\n    check_policy_service { unix:private/quota-status,"
        " timeout=5s, try_limit=1, default_action=DUNNO }"
    ) in main
    script = files["/usr/local/bin/mailcluster-quota-warning"]
    assert script.startswith("#!/bin/sh")
    assert "From: Mail system <postmaster@mx1.cluster.test>" in script


def test_pillar_moves_every_quota_key(tmp_path):
    extra = (
        "mail:\n  quota: {default_mb: 2048, grace_percent: 0, warnings: [80, 99, 90],"
        " reject_code: 452, status_timeout: 3}\n"
        "  dovecot: {protocols: [imap, lmtp], dedup: {enabled: false}}\n"
    )
    files = _files(tmp_path, extra)
    dovecot = files["/etc/dovecot/dovecot.conf"]
    assert "sieve_before" not in dovecot and "sieve_duplicate" not in dovecot
    assert "protocols = imap lmtp\n" in dovecot
    assert "managesieve" not in dovecot
    # the sieve plugin still runs the users' scripts at delivery
    assert "sieve = file:~/sieve;active=~/.dovecot.sieve" in dovecot
    assert "quota_rule = *:storage=2048M" in dovecot
    assert "quota_grace = 0%%" in dovecot
    # highest first: dovecot runs only the first warning that a delivery crosses
    warnings = re.findall(r"^  (quota_warning\d*) = storage=(\d+)%%", dovecot, re.M)
    assert warnings == [("quota_warning", "99"), ("quota_warning2", "90"), ("quota_warning3", "80")]
    assert 'quota_status_overquota = "452 4.2.2 Mailbox is full"' in dovecot
    assert "unix:private/quota-status, timeout=3s, try_limit=1" in files["/etc/postfix/main.cf"]
