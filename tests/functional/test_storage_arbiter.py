"""The DRBD pair's fencing with the master as third party (storage:drbd:arbiter, issue 11
item 5, docs/storage.md "Partition"), through Salt's loader (no daemons): a drbd_ocfs2 node
gets `fencing resource-and-stonith` and the fence-peer handler in its resource file, the
handler itself and its config (the master's address from the topology, the secret in a
root-only file, no diff in the state output); with the arbiter off, neither. The verdicts
and the handler's exchange: tests/unit/test_drbd_arbiter.py; a real partition of the qemu
pair: tests/seed/test_40_partition.py."""

import json

import pytest
from test_roles_support import pillar_copy, run_node
from test_roles_validation import DRBD

RES = "/etc/drbd.d/r0.res"
HANDLER = "storage-drbd-config-arbiter-handler-file-managed"
CONFIG = "storage-drbd-config-arbiter-config-file-serialize"


def _render(tmp, extra):
    calls = [
        ["state.show_highstate"],
        ["templates"],
        ["grains.get", "pythonexecutable"],
        ["state.show_sls", "storage.clean"],
    ]
    return run_node(tmp, "mx2", calls, pillar_copy(tmp, extra), grains={"init": "systemd"})


@pytest.fixture(scope="module")
def arbiter_on(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("arbiter"), DRBD)


@pytest.fixture(scope="module")
def arbiter_off(tmp_path_factory):
    secret = "shared_secret: functional-test-secret"
    off = DRBD.replace(secret, f"{secret}, fencing: dont-care, arbiter: {{enabled: false}}")
    assert off != DRBD
    return _render(tmp_path_factory.mktemp("no-arbiter"), off)


def _args(body):
    out = {}
    for item in body["file"]:
        if isinstance(item, dict):
            out.update(item)
    return out


def test_resource_file_fences_through_the_handler(arbiter_on):
    high, rendered, python, _clean = arbiter_on
    assert isinstance(high, dict), high
    text = rendered[RES]["text"]
    assert "fencing resource-and-stonith;" in text
    handler = (
        f'fence-peer "{python} /usr/local/sbin/mailcluster-fence-peer '
        '/etc/mailcluster/drbd-arbiter.json";'
    )
    assert handler in text, text


def test_handler_and_its_config_come_before_the_resource_file(arbiter_on):
    high, _rendered, _python, _clean = arbiter_on
    handler = _args(high[HANDLER])
    assert handler["name"] == "/usr/local/sbin/mailcluster-fence-peer"
    assert handler["source"] == "salt://storage/files/fence_peer.py"
    config = _args(high[CONFIG])
    assert config["mode"] == "0600" and config["show_changes"] is False
    data = config["dataset"]
    # the master's address: the node with role master in mailcluster:nodes
    assert data["host"] == "10.88.0.2" and data["port"] == 7798
    assert (data["node"], data["resource"]) == ("mx2", "r0")
    assert data["secret"] == "functional-test-secret"
    assert data["reboot_on_deny"] is True and data["timeout"] == 20
    json.dumps(data)  # serialisable as the handler reads it
    require = _args(high["storage-drbd-config-resource-initial-file-managed"])["require"]
    assert {"file": HANDLER} in require and {"file": CONFIG} in require


def test_without_the_arbiter_no_handler_and_no_fencing(arbiter_off):
    high, rendered, _python, _clean = arbiter_off
    assert isinstance(high, dict), high
    assert HANDLER not in high and CONFIG not in high
    text = rendered[RES]["text"]
    assert "fencing dont-care;" in text and "fence-peer" not in text


def test_clean_removes_the_handler_and_its_config(arbiter_on):
    _high, _rendered, _python, clean = arbiter_on
    assert isinstance(clean, dict), clean
    body = clean["storage-drbd-clean-arbiter-file-absent"]["file"]
    names = next(item["names"] for item in body if isinstance(item, dict) and "names" in item)
    assert names == ["/usr/local/sbin/mailcluster-fence-peer", "/etc/mailcluster/drbd-arbiter.json"]
    require = next(item["require"] for item in body if isinstance(item, dict) and "require" in item)
    assert {"file": "storage-drbd-clean-resource-file-absent"} in require
