"""Unit tests for the mailcluster_ha grain and the beacon's validate(), on real outputs."""

import pytest
from mc_unit_helpers import load_loader_module, output

grains = load_loader_module("grains", "mailcluster_ha")
beacon = load_loader_module("beacons", "mailcluster_ha")

D = "drbd-ocfs2/"
H = "drbd-ocfs2/host-tools/"


@pytest.fixture
def node_files(monkeypatch, tmp_path):
    """Point the grain at recorded outputs and files: a dual-primary node with o2cb."""
    commands = {
        ("drbdadm", "--version"): output(f"{H}drbdadm.version_no_module.txt"),
        ("drbdadm", "sh-resources"): output(f"{H}drbdadm.sh_resources.txt"),
        ("drbdsetup", "events2", "--now"): output(
            f"{D}09-ocfs2-mounted.vm1.drbdsetup_events2_now.txt"
        ),
        ("cl_status", "hbstatus"): output("heartbeat/02-running.mx1.cl_status_hbstatus.txt"),
        ("systemctl", "is-active", "--quiet", "keepalived"): "",
    }
    files = {
        "/proc/drbd": output(f"{D}09-ocfs2-mounted.vm1.proc_drbd.txt"),
        "/etc/default/o2cb": "O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=probeclu\n",
        "/etc/ha.d/ha.cf": output("heartbeat/config.ha.cf"),
        # rendered by the ha role in the lab (mover keepalived)
        "/etc/keepalived/keepalived.conf": output("keepalived/mx1.keepalived.conf"),
    }
    monkeypatch.setattr(grains.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(grains, "_run", lambda cmd: commands.get(tuple(cmd)))
    monkeypatch.setattr(grains, "_read", lambda path: files.get(path))
    monkeypatch.setattr(grains.os.path, "isdir", lambda path: path.endswith("/cluster/probeclu"))
    monkeypatch.setattr(grains.os, "uname", lambda: type("U", (), {"nodename": "mx1"})())
    return commands, files


def test_grain_on_a_full_node(node_files):
    assert grains.mailcluster_ha() == {
        "mailcluster_ha": {
            "drbd": {
                "utils_version": "9.22.0",
                "kernel_version": "8.4.11",
                "resources": {"r0": "Primary"},
            },
            "o2cb": {"cluster": "probeclu", "enabled": True, "online": True},
            "heartbeat": {"installed": True, "running": True, "node": "mx1"},
            "keepalived": {"installed": True, "running": True, "node": "mx1"},
        }
    }


def test_grain_module_unloaded_and_down(node_files):
    commands, files = node_files
    del files["/proc/drbd"]  # 14: /proc/drbd is gone with the module
    files["/etc/default/o2cb"] = ""
    commands[("cl_status", "hbstatus")] = None  # 01-stopped: rc 1
    commands[("systemctl", "is-active", "--quiet", "keepalived")] = None  # inactive: rc 3
    grain = grains.mailcluster_ha()["mailcluster_ha"]
    assert grain["drbd"]["kernel_version"] is None
    assert grain["drbd"]["resources"] == {"r0": "Unconfigured"}
    assert grain["o2cb"] == {"cluster": None, "enabled": False, "online": False}
    assert grain["heartbeat"]["running"] is False
    assert grain["keepalived"]["running"] is False


def test_grain_without_any_tool(monkeypatch):
    monkeypatch.setattr(grains.shutil, "which", lambda name: None)
    monkeypatch.setattr(grains, "_read", lambda path: None)
    assert grains.mailcluster_ha() == {
        "mailcluster_ha": {
            "drbd": {},
            "o2cb": {},
            "heartbeat": {"installed": False, "running": False, "node": None},
            "keepalived": {"installed": False, "running": False, "node": None},
        }
    }


def test_grain_never_raises(monkeypatch):
    def boom(*_args):
        raise RuntimeError("broken tool")

    monkeypatch.setattr(grains, "_drbd", boom)
    assert grains.mailcluster_ha()["mailcluster_ha"]["drbd"] == {}


def test_grain_runs_on_this_machine():
    """Whatever is installed here, the real grain answers a dict."""
    assert set(grains.mailcluster_ha()["mailcluster_ha"]) == {
        "drbd",
        "o2cb",
        "heartbeat",
        "keepalived",
    }


@pytest.mark.parametrize(
    ("config", "valid", "message"),
    [
        ([{"heartbeat": True}, {"drbd": True}, {"interval": 2}], True, "Valid"),
        ([{"drbd": ["r0"]}, {"disable_during_state_run": True}], True, "Valid"),
        ({"heartbeat": True}, False, "must be a list"),
        (["heartbeat"], False, "list of dicts"),
        ([{"hearbeat": True}], False, "unknown option(s) hearbeat"),
        ([{"heartbeat": "yes"}], False, "heartbeat must be true or false"),
        ([{"drbd": []}], False, "drbd must be true, false or a list"),
        ([{"drbd": "r0"}], False, "drbd must be true, false or a list"),
        ([{"heartbeat": False}, {"drbd": False}], False, "nothing to watch"),
    ],
)
def test_beacon_validate(config, valid, message):
    ok, text = beacon.validate(config)
    assert ok is valid
    assert message in text
