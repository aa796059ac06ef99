"""Bad pillar stops a highstate before any state runs, with a message naming the pillar key.

Each case adds a `local.sls` to a copy of the lab pillar; the top file and every role's map
call mailcluster.check, so rendering fails and no state is executed.
"""

import pytest
from test_roles_support import make_caller, pillar_copy

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
    caller = make_caller(tmp_path, "mx1", pillar_copy(tmp_path, extra))
    errors = caller.cmd("mailcluster.validate")
    assert any(message in e for e in errors), errors
    # a highstate is the failing pillar check alone: no other state is even compiled
    result = caller.cmd("state.apply", test=True)
    assert list(result) == [
        "mailcluster_|-common-pillar-mailcluster-pillar-valid_|-mailcluster_|-pillar_valid"
    ], result
    (only,) = result.values()
    assert only["result"] is False and message in only["comment"]
    # and so does a single role through its map
    result = caller.cmd("state.show_sls", "common")
    assert isinstance(result, list) and message in "\n".join(result)


def test_added_domain_passes(tmp_path):
    extra = (
        "mailcluster:\n  domains:\n    added.test:\n      mailboxes:\n        - name: eve\n"
        "  secrets:\n    mailboxes:\n      eve@added.test: pw\n"
    )
    caller = make_caller(tmp_path, "ns1", pillar_copy(tmp_path, extra))
    assert caller.cmd("mailcluster.validate") == []
    assert "added.test" in caller.cmd("mailcluster.zones")
