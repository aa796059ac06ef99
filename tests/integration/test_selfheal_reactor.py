"""
Self-healing wiring with a real salt-master and two minions (pytest-salt-factories), tcp
transport and presence events as in the lab: reactor files -> runner -> audit events.

The minions are called mx1 and mx2 (the pillar's mail pair). They run on this host, so
heartbeat is a stand-in module (``heartbeat.node_status`` reads a file the test writes) and
the pillar has no DNS primary: the runner keeps the withdrawn set in its state file and the
DNS half is covered by tests/lab. A stand-in ``mailcluster_ha`` beacon pins the real shape of
beacon events on the master.
"""

from __future__ import annotations

import json
import pathlib
import time

import pytest
from mc_wait import wait_for

# Long enough that a salt-run started right after a failover (5-8 s of CLI start-up on a loaded
# 2-core machine) still falls inside it.
HOLD_DOWN = 15
pytestmark = [pytest.mark.integration]

REPO = pathlib.Path(__file__).resolve().parents[2]

FAKE_HEARTBEAT = '''
"""Stand-in for heartbeat on a host without it: node_status reads <dir>/<me>-<node>."""
import os


def node_status(node):
    path = os.path.join(__opts__["mc_fake_dir"], "{}-{}".format(__opts__["id"], node))
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return "active"


def wait_node_status(node, status="dead", timeout=4.0, interval=0.05):
    """Same contract as the real one (_modules/heartbeat.py), on the file above."""
    import time

    deadline = time.monotonic() + float(timeout)
    while True:
        seen = node_status(node)
        if seen == status or time.monotonic() >= deadline:
            return seen
        time.sleep(float(interval))


def takeover(which="all"):
    return True
'''

FAKE_BEACON = '''
"""Stand-in mailcluster_ha beacon: fires the payload found in <dir>/<me>-beacon.json once."""
import json
import os


def validate(config):
    return True, "ok"


def beacon(config):
    path = os.path.join(__opts__["mc_fake_dir"], "{}-beacon.json".format(__opts__["id"]))
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        payload = json.load(fh)
    os.remove(path)
    return [payload]
'''

PILLAR_TOP = "base:\n  '*':\n    - cluster\n"
PILLAR = {
    "mailcluster": {
        "cluster": {"name": "it", "domain": "cluster.test", "network": "127.0.0.0/8"},
        "nodes": {
            "mx1": {"ip": "127.0.0.1", "service_ip": "127.0.0.111", "roles": ["mail", "ha"]},
            "mx2": {"ip": "127.0.0.1", "service_ip": "127.0.0.112", "roles": ["mail", "ha"]},
        },
        "domains": {"example.test": {"mailboxes": [{"name": "alice"}]}},
        "selfheal": {
            "verify_timeout": 1.0,
            "witness_wait": 3.0,
            "hold_down": HOLD_DOWN,
            "health_services": [],
            "repair_ip": False,
            "set_grain": False,
            "pillar_cache": 0,
            "reconcile_verify_timeout": 3.0,
        },
    }
}


@pytest.fixture(scope="session")
def salt_factories_config(tmp_path_factory):
    return {"root_dir": str(tmp_path_factory.mktemp("selfheal-salt"))}


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("selfheal-fake")


@pytest.fixture(scope="module")
def master(salt_factories, tmp_path_factory):
    pillar_dir = tmp_path_factory.mktemp("selfheal-pillar")
    (pillar_dir / "top.sls").write_text(PILLAR_TOP)
    (pillar_dir / "cluster.sls").write_text(json.dumps(PILLAR))
    overrides = {
        "transport": "tcp",
        "presence_events": True,
        "loop_interval": 5,
        "worker_threads": 2,
        # as reactor/master.d/selfheal.conf ships it: Salt 3008.4's pooled request router
        # failed a CI run here at start-up ("Error in pool routing: Stream is closed", the
        # minions never started), as it left lab minions deaf after a master restart
        "worker_pools_enabled": False,
        "runner_dirs": [str(REPO / "_runners")],
        "mailcluster_roots": [str(REPO)],
        "pillar_roots": {"base": [str(pillar_dir)]},
        "reactor": [
            {"salt/beacon/*/mailcluster_ha/*": [str(REPO / "reactor/beacon_peer.sls")]},
            {"salt/presence/change": [str(REPO / "reactor/presence_change.sls")]},
        ],
        "engines_dirs": [str(REPO / "reactor/engines")],
        "engines": [{"mailcluster_selfheal": {"interval": 5, "first_delay": 5}}],
    }
    factory = salt_factories.salt_master_daemon("selfheal-master", overrides=overrides)
    tree = pathlib.Path(factory.state_tree.base.write_path)
    for rel, text in (
        ("_modules/heartbeat.py", FAKE_HEARTBEAT),
        ("_beacons/mailcluster_ha.py", FAKE_BEACON),
    ):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    with factory.started():
        yield factory


def _minion(master, name, fake_dir):
    return master.salt_minion_daemon(
        name,
        overrides={"transport": "tcp", "mc_fake_dir": str(fake_dir)},
    )


@pytest.fixture(scope="module")
def minions(master, fake_dir):
    mx1 = _minion(master, "mx1", fake_dir)
    mx2 = _minion(master, "mx2", fake_dir)
    with mx1.started(), mx2.started():
        for m in (mx1, mx2):
            ret = m.salt_call_cli().run("saltutil.sync_all")
            assert ret.returncode == 0, ret
        yield {"mx1": mx1, "mx2": mx2}


@pytest.fixture
def clean(master, fake_dir):
    """Each test starts with heartbeat saying active and no hold-down pending."""
    for path in fake_dir.iterdir():
        path.unlink()
    cachedir = pathlib.Path(master.config["root_dir"]) / master.config["cachedir"]
    state = cachedir / "mailcluster_failover" / "state.json"
    if state.exists():
        state.unlink()
    yield


def _set_hb(fake_dir, me, node, status):
    (fake_dir / f"{me}-{node}").write_text(status)


def _wait(event_listener, master, tags, after, timeout=40):
    found = event_listener.wait_for_events(
        [(master.id, t) for t in tags], after_time=after, timeout=timeout
    )
    assert found.found_all_events, f"missing {found.missed}"
    return {e.tag: e.data for e in found.matches}


def test_beacon_event_shape_reaches_runner(master, minions, fake_dir, event_listener, clean):
    """Pin the shape of a beacon event on the master; the runner reads the peer from it and,
    mx1 answering, refuses."""
    t0 = time.time()
    payload = {"tag": "peer", "node": "mx2", "peer": "mx1", "old": "active", "new": "dead"}
    (fake_dir / "mx2-beacon.json").write_text(json.dumps(payload))
    ret = minions["mx2"].salt_call_cli().run("beacons.add", "mailcluster_ha", "[{'interval': 1}]")
    assert ret.returncode == 0, ret
    try:
        beacon = event_listener.wait_for_events(
            [(master.id, "salt/beacon/mx2/mailcluster_ha/peer")], after_time=t0, timeout=30
        )
        assert beacon.found_all_events
        data = next(iter(beacon.matches)).data
        # Salt 3008.4: a beacon's payload is flat on the master bus, next to the sender's id
        # (event.send nests it under data['data'], see test_forged_event_is_refused)
        assert data["id"] == "mx2"
        assert data["peer"] == "mx1"
        assert data["new"] == "dead"
        events = _wait(event_listener, master, ["mailcluster/failover/mx1/refused"], t0)
        refused = events["mailcluster/failover/mx1/refused"]
        assert refused["trigger"] == "beacon"
        assert refused["claim"] == "lost"
        assert "answered test.ping" in refused["reason"]
    finally:
        minions["mx2"].salt_call_cli().run("beacons.delete", "mailcluster_ha")


def test_forged_event_is_refused(master, minions, event_listener, clean):
    """Any minion can send a beacon-like event; a live mx1 is not failed over."""
    t0 = time.time()
    ret = (
        minions["mx1"]
        .salt_call_cli()
        .run(
            "event.send",
            "salt/beacon/mx2/mailcluster_ha/peer",
            peer="mx1",
            new="dead",
        )
    )
    assert ret.returncode == 0, ret
    sent = event_listener.wait_for_events(
        [(master.id, "salt/beacon/mx2/mailcluster_ha/peer")], after_time=t0, timeout=30
    )
    assert sent.found_all_events
    data = next(iter(sent.matches)).data
    assert data["id"] == "mx1"
    assert data["data"]["peer"] == "mx1"
    events = _wait(event_listener, master, ["mailcluster/failover/mx1/refused"], t0)
    refused = events["mailcluster/failover/mx1/refused"]
    assert refused["sender"] == "mx1"
    assert refused["witnesses"]["master"]["answered"] is True
    time.sleep(2)
    started = event_listener.get_events(
        [(master.id, "mailcluster/failover/mx1/started")], after_time=t0
    )
    assert not started


def test_status_reads_the_roles_zones_on_the_master(master, minions, clean):
    """The runners load from runner_dirs and reach each other through __salt__; status asks
    the roles' mailcluster_dns.zones through the minion loader the runner builds on the master
    (a missing or broken module would fail the run)."""
    ret = master.salt_run_cli(timeout=60).run("mailcluster_failover.status")
    assert ret.returncode == 0, ret
    assert ret.data["dns_primary"] is None
    assert ret.data["settings"]["hold_down"] == HOLD_DOWN


def test_partition_is_refused(master, minions, fake_dir, event_listener, clean):
    """mx2's heartbeat says mx1 dead (cut link) but the master reaches mx1: no failover."""
    _set_hb(fake_dir, "mx2", "mx1", "dead")
    ret = master.salt_run_cli(timeout=60).run("mailcluster_failover.verify", "mx1")
    assert ret.returncode == 0, ret
    assert ret.data["lost"] is False
    assert ret.data["witnesses"]["peer"]["says_dead"] is True
    assert ret.data["witnesses"]["master"]["answered"] is True


def test_failover_and_failback_through_presence(master, minions, fake_dir, event_listener, clean):
    """mx1's minion dies: presence -> runner -> both witnesses -> started/done. Back and
    healthy after the hold-down: presence -> failback."""
    mx1 = minions["mx1"]
    t0 = time.time()
    _set_hb(fake_dir, "mx2", "mx1", "dead")
    mx1.terminate()
    try:
        events = _wait(
            event_listener,
            master,
            ["mailcluster/failover/mx1/started", "mailcluster/failover/mx1/done"],
            t0,
        )
        done = events["mailcluster/failover/mx1/done"]
        # presence (~25 ms after the minion died) or, when it held the node first, the
        # engine's reconcile: the same verification either way
        assert done["trigger"] in ("presence", "reconcile")
        assert done["witnesses"]["master"]["answered"] is False
        assert done["witnesses"]["peer"]["says_dead"] is True
        # a second trigger for the same loss is a no-op (idempotent), not a second failover
        ret = master.salt_run_cli(timeout=60).run(
            "mailcluster_failover.handle",
            "tag=salt/presence/change",
            'data={"lost": ["mx1"], "new": []}',
        )
        assert ret.returncode == 0, ret
        assert ret.data[0]["result"] == "noop", ret.data
        status = master.salt_run_cli(timeout=60).run("mailcluster_failover.status")
        assert status.data["state"]["_withdrawn"] == ["mx1"]
    finally:
        _set_hb(fake_dir, "mx2", "mx1", "active")
        time.sleep(HOLD_DOWN + 1)  # let the hold-down pass
        t1 = time.time()
        mx1.start()
    events = _wait(
        event_listener,
        master,
        ["mailcluster/failover/mx1/failback"],
        t1,
        timeout=60,
    )
    fb = events["mailcluster/failover/mx1/failback"]
    assert fb["action"] == "failback"
    status = master.salt_run_cli(timeout=60).run("mailcluster_failover.status")
    assert status.data["state"]["_withdrawn"] == []


def test_hold_down_refuses_a_quick_flap(master, minions, fake_dir, event_listener, clean):
    """A failback right after a failover waits for the hold-down and says so in an audit."""
    mx1 = minions["mx1"]
    _set_hb(fake_dir, "mx2", "mx1", "dead")
    t0 = time.time()
    mx1.terminate()
    try:
        _wait(event_listener, master, ["mailcluster/failover/mx1/done"], t0)
        t1 = time.time()
        ret = master.salt_run_cli(timeout=60).run("mailcluster_failover.failback", "mx1")
        assert ret.data["result"] == "refused", ret.data
        assert "hold-down" in ret.data["reason"]
        events = _wait(event_listener, master, ["mailcluster/failover/mx1/refused"], t1)
        assert "hold-down" in events["mailcluster/failover/mx1/refused"]["reason"]
    finally:
        _set_hb(fake_dir, "mx2", "mx1", "active")
        mx1.start()
    # after the hold-down, with mx1 healthy, the engine's reconcile (or presence) fails back
    events = _wait(event_listener, master, ["mailcluster/failover/mx1/failback"], t1, 60)
    status = master.salt_run_cli(timeout=60).run("mailcluster_failover.status")
    assert status.data["state"]["_withdrawn"] == []


def test_master_down_while_mx1_dies(master, minions, fake_dir, event_listener, clean):
    """No master when mx1 dies: nothing fires then; when the master is back, mx2's return
    (presence) or the engine's reconcile fails mx1 over."""
    mx1 = minions["mx1"]
    master.terminate()
    try:
        _set_hb(fake_dir, "mx2", "mx1", "dead")
        mx1.terminate()
    finally:
        t0 = time.time()
        master.start()
    # On this host's salt-factories setup a minion sometimes keeps its old session after a
    # master restart ("message authentication failed" in presence_callback) and stays
    # unreachable; the lab's minions re-authenticate. Restart mx2's minion so that the test
    # is about the self-healing, not about that.
    minions["mx2"].terminate()
    minions["mx2"].start()
    try:
        # read from the runner's audit log: the test's event forwarder restarts with the master
        done = _audit_wait(master, "mx1", "done", t0, 90)
        assert done["trigger"] == "reconcile"
        assert done["witnesses"]["peer"]["says_dead"] is True
    finally:
        _set_hb(fake_dir, "mx2", "mx1", "active")
        time.sleep(HOLD_DOWN + 1)
        t1 = time.time()
        mx1.start()
    _audit_wait(master, "mx1", "failback", t1, 90)


def _audit_wait(master, node, event, after, timeout):
    path = (
        pathlib.Path(master.config["root_dir"])
        / master.config["cachedir"]
        / "mailcluster_failover"
        / "audit.jsonl"
    )

    def record():
        lines = path.read_text().splitlines() if path.exists() else []
        recs = (json.loads(line) for line in lines)
        return next(
            (r for r in recs if r["node"] == node and r["event"] == event and r["time"] >= after),
            None,
        )

    return wait_for(record, timeout, 0.5, what=f"a {event} audit record for {node}")
