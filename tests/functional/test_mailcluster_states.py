"""
The mailcluster states (zones_synced, domains_synced, replica_running) through Salt's real
state loader and the shared skeleton (``_states/mc_flow.py``). The execution functions they
call are replaced by small in-memory stand-ins (a zone directory, Postfix Admin's rows, a
replica), so what is checked is the states' flow: test mode, exact changes, read-back,
second run. The modules themselves run for real in the lab (tests/lab/test_roles_cluster.py).
"""

import pytest
import salt.loader
from salt.exceptions import CommandExecutionError


class FakeZones:
    """``mailcluster_dns.dns_sync``: zones to write until written; ``broken`` fail the check."""

    def __init__(self, pending, broken=(), sticky=False):
        self.pending = dict(pending)  # zone -> (old serial, new serial)
        self.broken = set(broken)
        self.sticky = sticky  # a write that does not take (the re-check still differs)
        self.writes = 0

    def __call__(self, directory, test=False, serial_floor=None):
        if test:
            changed = {z: {"old_serial": o, "serial": n} for z, (o, n) in self.pending.items()}
            return {"changed": changed, "errors": {}}
        self.writes += 1
        changed, errors = {}, {}
        for zone, (old, new) in list(self.pending.items()):
            if zone in self.broken:
                errors[zone] = "bad record"
                continue
            changed[zone] = {"old": old or None, "new": new}
            if not self.sticky:
                del self.pending[zone]
        return {"changed": changed, "errors": errors}


class FakeRows:
    """``mailcluster_db.db_sync``: row changes to make until made."""

    def __init__(self, todo, sticky=False, error=None):
        self.todo = list(todo)
        self.sticky = sticky
        self.error = error

    def __call__(self, database, test=False):
        if test:
            return list(self.todo)
        if self.error:
            raise CommandExecutionError(self.error)
        done = list(self.todo)
        if not self.sticky:
            self.todo = []
        return done


class _StandIns(dict):
    """``__salt__`` for the states: the given stand-ins; any other function is "there" for
    ``__virtual__`` and fails the test when called."""

    def __contains__(self, key):
        return True

    def __missing__(self, key):
        def absent(*args, **kwargs):
            raise AssertionError(f"{key} was called; this test did not expect it")

        return absent


@pytest.fixture
def state(loaders):
    """Call a mailcluster state on a real state loader (``__states__`` holds the skeleton)
    whose ``__salt__`` holds the stand-ins: ``state(fun, funcs, test=False, **kwargs)``."""

    def run(fun, funcs, test=False, **kwargs):
        opts = dict(loaders.opts, test=test)
        st = salt.loader.states(
            opts, functions=_StandIns(funcs), utils=loaders.utils, serializers=loaders.serializers
        )
        return st[f"mailcluster.{fun}"](**kwargs)

    return run


def _check(ret, result, changes, comment):
    assert (ret["result"], ret["changes"], ret["comment"]) == (result, changes, comment)


ZONES = "/var/lib/bind/mailcluster"


def test_zones_synced_test_mode_predicts_what_a_run_reports(state):
    fake = FakeZones({"example.test": (2026010101, 2026010102), "sales.test": (0, 2026010101)})
    funcs = {"mailcluster_dns.dns_sync": fake}
    want = {
        "example.test": {"old": 2026010101, "new": 2026010102},
        "sales.test": {"old": None, "new": 2026010101},
    }
    ret = state("zones_synced", funcs, test=True, name=ZONES)
    _check(ret, None, want, "2 zone(s) would be written")
    assert fake.writes == 0
    _check(state("zones_synced", funcs, name=ZONES), True, want, "2 zone(s) written")
    _check(state("zones_synced", funcs, name=ZONES), True, {}, "all zones match pillar")
    _check(state("zones_synced", funcs, test=True, name=ZONES), True, {}, "all zones match pillar")


def test_zones_synced_reports_what_was_written_when_a_zone_check_fails(state):
    fake = FakeZones({"a.test": (1, 2), "b.test": (1, 2)}, broken={"b.test"})
    ret = state("zones_synced", {"mailcluster_dns.dns_sync": fake}, name=ZONES)
    comment = "zone check failed, old zone kept: b.test: bad record"
    _check(ret, False, {"a.test": {"old": 1, "new": 2}}, comment)


def test_zones_synced_fails_when_the_zones_still_differ(state):
    fake = FakeZones({"a.test": (1, 2)}, sticky=True)
    ret = state("zones_synced", {"mailcluster_dns.dns_sync": fake}, name=ZONES)
    _check(ret, False, {"a.test": {"old": 1, "new": 2}}, "zones still differ: ['a.test']")


ROWS = [["domain", "add", "example.test"], ["mailbox", "add", "a@example.test"]]


def test_domains_synced(state):
    rows = FakeRows(ROWS)
    funcs = {"mailcluster_db.db_sync": rows}
    want = {"rows": {"old": None, "new": ROWS}}
    ret = state("domains_synced", funcs, test=True, name="postfixadmin")
    _check(ret, None, want, "2 row change(s) would be made")
    assert rows.todo == ROWS  # nothing written
    _check(state("domains_synced", funcs, name="postfixadmin"), True, want, "2 row change(s) made")
    match = "domains, mailboxes and aliases match pillar"
    _check(state("domains_synced", funcs, name="postfixadmin"), True, {}, match)
    _check(state("domains_synced", funcs, test=True, name="postfixadmin"), True, {}, match)


def test_domains_synced_read_back_and_errors(state):
    funcs = {"mailcluster_db.db_sync": FakeRows([["alias", "add", "x"]], sticky=True)}
    ret = state("domains_synced", funcs, name="postfixadmin")
    want = {"rows": {"old": None, "new": [["alias", "add", "x"]]}}
    _check(ret, False, want, "still differs after update: [['alias', 'add', 'x']]")
    funcs = {"mailcluster_db.db_sync": FakeRows([["alias", "add", "x"]], error="db gone")}
    _check(state("domains_synced", funcs, name="postfixadmin"), False, {}, "db gone")


def _replica(host, sql="Yes"):
    return {
        "Master_Host": host,
        "Master_User": "repl",
        "Master_Port": 3306,
        "Using_Gtid": "Slave_Pos",
        "Slave_SQL_Running": sql,
        "Slave_IO_Running": "Yes",
        "Slave_IO_State": "Waiting for master to send event",
    }


def test_replica_running(state):
    current = {"status": None}
    configured = []

    def configure(host, user, password, port):
        configured.append((host, user, port))
        current["status"] = _replica(host)
        return current["status"]

    funcs = {
        "mailcluster_db.replica_status": lambda: current["status"],
        "mailcluster_db.replica_configure": configure,
    }
    args = {"name": "10.88.0.21", "user": "repl", "password": "s3cret"}
    want = {"master": {"old": None, "new": "10.88.0.21"}}
    ret = state("replica_running", funcs, test=True, **args)
    _check(ret, None, want, "would replicate from 10.88.0.21")
    assert configured == []
    ret = state("replica_running", funcs, **args)
    _check(ret, True, want, "replicating from 10.88.0.21")
    assert "s3cret" not in str(ret)
    assert configured == [("10.88.0.21", "repl", 3306)]
    _check(state("replica_running", funcs, **args), True, {}, "replicating from 10.88.0.21")


def test_replica_that_does_not_start_fails_without_changes(state):
    funcs = {
        "mailcluster_db.replica_status": lambda: _replica("10.88.0.99"),
        "mailcluster_db.replica_configure": lambda *a: _replica("10.88.0.21", sql="No"),
    }
    ret = state("replica_running", funcs, name="10.88.0.21", user="repl", password="x")
    assert (ret["result"], ret["changes"]) == (False, {})
    assert ret["comment"].startswith("replication did not start: ")
