"""Bad pillar stops a highstate before any state runs, with a message naming the pillar key.

Each case adds a `local.sls` to a copy of the lab pillar; the top file and every role's map
call mailcluster.check, so rendering fails and no state is executed.
"""

import pytest
from test_roles_support import pillar_copy, run_node

CASES = {
    "bad-domain": (
        "mailcluster:\n  domains:\n    bad..test:\n      mailboxes: []\n",
        "mailcluster:domains:bad..test: not a valid domain name",
    ),
    "duplicate-mailbox": (
        "mailcluster:\n  domains:\n    dup.test:\n      mailboxes:\n"
        "        - {name: joe, password_hash: x}\n        - {name: joe, password_hash: y}\n",
        "mailcluster:domains:dup.test:mailboxes:1:name: duplicate mailbox joe@dup.test",
    ),
    "ip-outside-network": (
        "mailcluster:\n  nodes:\n    mx1:\n      service_ip: 192.168.7.1\n",
        "mailcluster:nodes:mx1:service_ip: 192.168.7.1 is outside the node's network",
    ),
    "missing-secret": (
        "mailcluster:\n  secrets:\n    heartbeat:\n      authkey: ''\n",
        "mailcluster:secrets:heartbeat:authkey: missing secret",
    ),
    "missing-mailbox-password": (
        "mailcluster:\n  domains:\n    new.test:\n      mailboxes:\n        - name: zed\n",
        "mailcluster:secrets:mailboxes:zed@new.test: missing secret",
    ),
    "unknown-role": (
        "mailcluster:\n  nodes:\n    ns2:\n      roles: [common, db_replica, webmail]\n",
        "mailcluster:nodes:ns2:roles: unknown role 'webmail'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_pillar_names_the_key(tmp_path, case):
    extra, message = CASES[case]
    errors, result, single = run_node(
        tmp_path,
        "mx1",
        [
            ["mailcluster.validate"],
            ["state.apply", [], {"test": True}],
            ["state.show_sls", "common"],
        ],
        pillar_copy(tmp_path, extra),
    )
    assert any(message in e for e in errors), errors
    # a highstate stops before running anything, with the key in its message
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        text = "\n".join(v["comment"] for v in result.values())
    else:  # role SLS files refused to render
        text = "\n".join(result)
    assert message in text, text
    # and so does a single role through its map
    assert isinstance(single, list) and message in "\n".join(single)


def test_added_domain_passes(tmp_path):
    extra = (
        "mailcluster:\n  domains:\n    added.test:\n      mailboxes:\n        - name: eve\n"
        "  secrets:\n    mailboxes:\n      eve@added.test: pw\n"
    )
    errors, zones = run_node(
        tmp_path,
        "ns1",
        [["mailcluster.validate"], ["mailcluster_dns.zones"]],
        pillar_copy(tmp_path, extra),
    )
    assert errors == []
    assert "added.test" in zones
