"""
The mailcluster_ha beacon run by Salt's own beacon machinery (salt.beacons.Beacon), with
our modules from the loader and real heartbeat / DRBD recordings replayed.
"""

import pytest
import salt.beacons
import salt.loader
from mc_fake_cmd import FIXTURES
from mc_recordings import heartbeat_node

D = "drbd-ocfs2/"
HB = "heartbeat/"
VS = "drbdsetup status r0 --verbose --statistics"


@pytest.fixture
def beacons(loaders, fake_cmd):
    module = salt.loader.beacons(loaders.opts, loaders.modules)
    module["mailcluster_ha.beacon"].__globals__["LAST"].clear()
    module["mailcluster_ha.beacon"].__globals__["_FACTS"].clear()
    return salt.beacons.Beacon(loaders.opts, loaders.modules)


def _process(beacons, loaders, options):
    config = {"mailcluster_ha": [{key: value} for key, value in options.items()]}
    return beacons.process(config, loaders.grains)


def test_heartbeat_peer_death_fires_once(beacons, loaders, fake_cmd):
    opts = {"heartbeat": True, "drbd": False}
    fake_cmd.set(heartbeat_node("02-running"))
    assert _process(beacons, loaders, opts) == []  # first run: baseline only
    assert _process(beacons, loaders, opts) == []  # nothing changed
    fake_cmd.set(heartbeat_node("05-peer-dead"))
    events = _process(beacons, loaders, opts)
    minion = loaders.opts["id"]
    assert events == [
        {
            "tag": f"salt/beacon/{minion}/mailcluster_ha/heartbeat/mx2",
            "data": {
                "node": "mx1",
                "peer": "mx2",
                "kind": "heartbeat",
                "old": "active",
                "new": "dead",
                "id": minion,
            },
            "beacon_name": "mailcluster_ha",
        }
    ]
    assert _process(beacons, loaders, opts) == []  # still dead: no repeat
    fake_cmd.set(heartbeat_node("02-running"))
    back = _process(beacons, loaders, opts)
    assert [(e["data"]["old"], e["data"]["new"]) for e in back] == [("dead", "active")]


def test_heartbeat_stopped_locally_fires_nothing(beacons, loaders, fake_cmd):
    opts = {"heartbeat": True, "drbd": False}
    fake_cmd.set(heartbeat_node("02-running"))
    _process(beacons, loaders, opts)
    fake_cmd.set(heartbeat_node("01-stopped"))
    assert _process(beacons, loaders, opts) == []


def test_drbd_connection_loss_fires(beacons, loaders, fake_cmd):
    """09 (Connected) then 13 (the peer gone: coloured 'connection:Connecting')."""
    lost = (FIXTURES / f"{D}13-drbd-down.vm2.secondary_down.txt").read_text()
    lost = lost.split("+ drbdadm status r0\n", 1)[1].split("+ echo", 1)[0]
    opts = {"heartbeat": False, "drbd": ["r0"]}
    fake_cmd.set(
        {
            "uname -n": {"stdout": "node2\n", "stderr": "", "retcode": 0},
            VS: f"{D}09-ocfs2-mounted.vm2.drbdsetup_status_vs.txt",
            "drbdadm dump all": f"{D}09-ocfs2-mounted.vm2.drbdadm_dump.txt",
        }
    )
    assert _process(beacons, loaders, opts) == []
    fake_cmd.set({VS: {"stdout": lost, "stderr": "", "retcode": 0}})
    events = _process(beacons, loaders, opts)
    assert len(events) == 1
    assert events[0]["tag"].endswith("/mailcluster_ha/drbd/r0")
    data = dict(events[0]["data"])
    data.pop("id")
    assert data == {
        "node": "node2",
        "peer": "node1",
        "kind": "drbd",
        "resource": "r0",
        "old": "Connected",
        "new": "Connecting",
    }
    # the resource goes down (13): another transition
    fake_cmd.set(
        {
            VS: f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_status_vs.txt",
            "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
        }
    )
    down = _process(beacons, loaders, opts)
    assert [(e["data"]["old"], e["data"]["new"]) for e in down] == [("Connecting", "Unconfigured")]
