"""Unit tests for _modules/drbd.py, fed with real DRBD 8.4 / drbd-utils 9.22 output."""

import pytest
from mc_unit_helpers import OK, command_module_dunders, load_loader_module, output, raw
from salt.exceptions import CommandExecutionError

drbd = load_loader_module("modules", "drbd")
parse = load_loader_module("modules", "drbd_parse")

D = "drbd-ocfs2/"
H = "drbd-ocfs2/host-tools/"


def _vol(disk, minor=0):
    return [{"volume": 0, "minor": minor, "disk": disk}]


def _peer(role, peer_disk, replication="Established", connection="Connected", done=None):
    return {
        "name": "peer",
        "connection": connection,
        "role": role,
        "volumes": [
            {"volume": 0, "replication": replication, "peer_disk": peer_disk, "done": done}
        ],
    }


def _res(role, disk, peer):
    return {"role": role, "suspended": False, "up": True, "volumes": _vol(disk), "peers": [peer]}


STATUS_VS = {
    "01-connected-inconsistent.vm1": _res(
        "Secondary", "Inconsistent", _peer("Secondary", "Inconsistent")
    ),
    "01-connected-inconsistent.vm2": _res(
        "Secondary", "Inconsistent", _peer("Secondary", "Inconsistent")
    ),
    "03-synced-pri-sec.vm1": _res("Primary", "UpToDate", _peer("Secondary", "UpToDate")),
    "03-synced-pri-sec.vm2": _res("Secondary", "UpToDate", _peer("Primary", "UpToDate")),
    "04-dual-primary.vm1": _res("Primary", "UpToDate", _peer("Primary", "UpToDate")),
    "04-dual-primary.vm2": _res("Primary", "UpToDate", _peer("Primary", "UpToDate")),
    "09-ocfs2-mounted.vm1": _res("Primary", "UpToDate", _peer("Primary", "UpToDate")),
    "09-ocfs2-mounted.vm2": _res("Primary", "UpToDate", _peer("Primary", "UpToDate")),
}


@pytest.mark.parametrize("stage", sorted(STATUS_VS))
def test_parse_status_verbose(stage):
    parsed = parse.status(output(f"{D}{stage}.drbdsetup_status_vs.txt"))
    assert parsed == {"r0": STATUS_VS[stage]}


@pytest.mark.parametrize("stage", sorted(STATUS_VS))
def test_parse_status_plain_matches_verbose_except_minor(stage):
    """``drbdadm status`` (no --verbose) gives the same answer, minus the minor."""
    plain = parse.status(output(f"{D}{stage}.drbdadm_status.txt"))["r0"]
    expected = STATUS_VS[stage]
    assert plain["role"] == expected["role"]
    assert plain["volumes"][0]["disk"] == expected["volumes"][0]["disk"]
    assert plain["volumes"][0]["minor"] is None
    assert plain["peers"] == expected["peers"]


def test_parse_status_peer_gone_with_ansi_colours():
    """13-drbd-down: a coloured ``drbdadm status`` while the peer is unreachable."""
    text = raw(f"{D}13-drbd-down.vm2.secondary_down.txt")
    block = text.split("+ drbdadm status r0\n", 1)[1].split("+ echo", 1)[0]
    assert "\x1b[" in block
    parsed = parse.status(block)
    assert parsed == {
        "r0": {
            "role": "Secondary",
            "suspended": False,
            "up": True,
            "volumes": [{"volume": 0, "minor": None, "disk": "UpToDate"}],
            "peers": [
                {
                    "name": "peer",
                    "connection": "Connecting",
                    "role": "Unknown",
                    "volumes": [
                        {"volume": 0, "replication": "Off", "peer_disk": "DUnknown", "done": None}
                    ],
                }
            ],
        }
    }


@pytest.mark.parametrize(
    "fixture",
    [
        "13-drbd-down-module-loaded.vm2.drbdsetup_status_vs.txt",
        "13-drbd-down-module-loaded.vm2.drbdadm_status.txt",
    ],
)
def test_parse_status_down_is_empty_and_detected(fixture):
    text = output(D + fixture)
    assert parse.status(text) == {}
    assert parse.is_down(text)


def test_parse_role_and_dstate_pairs():
    assert parse.role_pair(output(f"{D}03-synced-pri-sec.vm2.drbdadm_role.txt")) == {
        "local": "Secondary",
        "peer": "Primary",
    }
    assert parse.role_pair(output(f"{D}01-connected-inconsistent.vm1.drbdadm_dstate.txt")) == {
        "local": "Inconsistent",
        "peer": "Inconsistent",
    }
    # down: drbdadm reads the on-disk metadata, no peer
    assert parse.role_pair(output(f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dstate.txt")) == {
        "local": "Consistent",
        "peer": None,
    }


def test_parse_version_module_unloaded():
    assert parse.version(output(f"{H}drbdadm.version_no_module.txt")) == {
        "utils": "9.22.0",
        "kernel": None,
        "api": 2,
    }
    text = raw(f"{D}14-drbd-module-unloaded.vm2.txt")
    block = text.split("## drbdadm --version\n", 1)[1].split("[rc=", 1)[0]
    assert parse.version(block) == {"utils": "9.22.0", "kernel": None, "api": 1}


def test_parse_version_code_decoding():
    assert parse.version("DRBD_KERNEL_VERSION_CODE=0x08040b\n")["kernel"] == "8.4.11"


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            "03-synced-pri-sec.vm1",
            {
                "cstate": "Connected",
                "role": "Primary",
                "peer_role": "Secondary",
                "disk": "UpToDate",
                "peer_disk": "UpToDate",
            },
        ),
        (
            "01-connected-inconsistent.vm2",
            {
                "cstate": "Connected",
                "role": "Secondary",
                "peer_role": "Secondary",
                "disk": "Inconsistent",
                "peer_disk": "Inconsistent",
            },
        ),
    ],
)
def test_parse_proc_drbd(stage, expected):
    parsed = parse.proc_drbd(output(f"{D}{stage}.proc_drbd.txt"))
    assert parsed == {"version": "8.4.11", "minors": {0: expected}}


def test_parse_proc_drbd_down_has_no_minors():
    parsed = parse.proc_drbd(output(f"{D}13-drbd-down-module-loaded.vm2.proc_drbd.txt"))
    assert parsed == {"version": "8.4.11", "minors": {}}


@pytest.mark.parametrize(
    ("stage", "role", "conn"),
    [
        ("01-connected-inconsistent.vm1", "Secondary", "Connected"),
        ("03-synced-pri-sec.vm1", "Primary", "Connected"),
        ("04-dual-primary.vm2", "Primary", "Connected"),
    ],
)
def test_parse_events2(stage, role, conn):
    parsed = parse.events2(output(f"{D}{stage}.drbdsetup_events2_now.txt"))
    assert parsed == {"r0": {"role": role, "connections": {"peer": conn}}}


def test_parse_events2_down():
    text = output(f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_events2_now.txt")
    assert parse.events2(text) == {}


def test_parse_dump():
    parsed = parse.dump(output(f"{D}03-synced-pri-sec.vm1.drbdadm_dump.txt"))
    assert list(parsed) == ["r0"]
    r0 = parsed["r0"]
    assert r0["file"] == "/etc/drbd.d/r0.res"
    assert r0["hosts"] == {
        "node1": {
            "device": "/dev/drbd0",
            "minor": 0,
            "disk": "/dev/vdb",
            "meta_disk": "internal",
            "address": "10.99.0.1:7789",
        },
        "node2": {
            "device": "/dev/drbd0",
            "minor": 0,
            "disk": "/dev/vdb",
            "meta_disk": "internal",
            "address": "10.99.0.2:7789",
        },
    }
    assert r0["options"]["net"]["allow-two-primaries"] == "yes"
    assert r0["options"]["net"]["protocol"] == "C"
    assert r0["options"]["disk"] == {"resync-rate": "100M"}


def test_parse_dump_drbd9_node_ids():
    parsed = parse.dump(output(f"{H}drbdadm.check_config_ok.txt"))
    assert parsed["r0"]["hosts"]["other"]["node_id"] == 0
    assert parsed["r0"]["file"] == "/tmp/drbdt/r0.res"


def test_synced():
    assert parse.synced(STATUS_VS["03-synced-pri-sec.vm1"])
    assert not parse.synced(STATUS_VS["01-connected-inconsistent.vm1"])
    assert not parse.synced(parse.down_entry())


def test_split_brain_log_parser_on_real_kernel_log():
    """07-mount holds real DRBD 8.4 kernel lines: the last connection event is Connected."""
    log = output(f"{D}07-mount.vm1.mount.txt")
    assert parse.split_brain_in_log(log, [0], "r0") is False
    log += "[  300.1] block drbd0: Split-Brain detected but unresolved, dropping connection!\n"
    assert parse.split_brain_in_log(log, [0], "r0") is True
    assert parse.split_brain_in_log(log, [1], "r1") is False


# --- through __salt__ with recorded outputs -------------------------------------------


@pytest.fixture
def configure_loader_modules(run_all):
    return command_module_dunders(drbd, "drbd_parse", run_all)


VS = "drbdsetup status r0 --verbose --statistics"


def test_status_connected(run_all):
    run_all.add(VS, f"{D}03-synced-pri-sec.vm2.drbdsetup_status_vs.txt")
    assert drbd.status("r0") == {"r0": STATUS_VS["03-synced-pri-sec.vm2"]}


def test_status_all_reads_config(run_all):
    run_all.add("drbdadm dump all", f"{D}04-dual-primary.vm1.drbdadm_dump.txt")
    run_all.add(VS, f"{D}04-dual-primary.vm1.drbdsetup_status_vs.txt")
    assert drbd.status() == {"r0": STATUS_VS["04-dual-primary.vm1"]}
    assert drbd.resources() == ["r0"]


def test_status_down_is_reported_not_raised(run_all):
    run_all.add(VS, f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_status_vs.txt")
    run_all.add("drbdadm dump all", f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt")
    assert drbd.status("r0") == {"r0": parse.down_entry()}
    assert drbd.is_synced("r0") is False


def test_status_unknown_resource_names_it(run_all):
    run_all.add(
        "drbdsetup status nosuch --verbose --statistics",
        f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_status.txt",
    )
    run_all.add("drbdadm dump all", f"{D}03-synced-pri-sec.vm1.drbdadm_dump.txt")
    with pytest.raises(CommandExecutionError, match="'nosuch'"):
        drbd.status("nosuch")


def test_role_cstate_dstate_live(run_all):
    run_all.add("drbdadm role r0", f"{D}04-dual-primary.vm1.drbdadm_role.txt")
    run_all.add("drbdadm cstate r0", f"{D}04-dual-primary.vm1.drbdadm_cstate.txt")
    run_all.add("drbdadm dstate r0", f"{D}04-dual-primary.vm1.drbdadm_dstate.txt")
    assert drbd.role("r0") == {"local": "Primary", "peer": "Primary"}
    assert drbd.cstate("r0") == "Connected"
    assert drbd.dstate("r0") == {"local": "UpToDate", "peer": "UpToDate"}


def test_role_cstate_down(run_all):
    run_all.add("drbdadm role r0", f"{D}13-drbd-down-module-loaded.vm2.drbdadm_role.txt")
    run_all.add("drbdadm cstate r0", f"{D}13-drbd-down-module-loaded.vm2.drbdadm_cstate.txt")
    run_all.add("drbdadm dump all", f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt")
    assert drbd.role("r0") == {"local": "Unconfigured", "peer": None}
    assert drbd.cstate("r0") == "Unconfigured"


def test_role_unknown_resource(run_all):
    run_all.add("drbdadm role nosuch", f"{H}drbdadm.role_nosuch.txt")
    with pytest.raises(CommandExecutionError, match="DRBD resource 'nosuch' is not defined") as exc:
        drbd.role("nosuch")
    assert "drbdadm role nosuch" in str(exc.value)


def test_metadata_detection(run_all):
    run_all.add(
        "drbdadm dstate r0",
        f"{H}drbdadm.dstate_no_metadata.txt",
        f"{H}drbdadm.dstate_new_metadata.txt",
    )
    assert drbd.has_metadata("r0") is False
    assert drbd.has_metadata("r0") is True


def test_createmd_never_overwrites_without_force(run_all):
    run_all.add("drbdadm create-md r0", f"{H}drbdadm.createmd_existing_metadata.txt")
    with pytest.raises(CommandExecutionError, match="create-md refused") as exc:
        drbd.createmd("r0")
    assert "Do you really want to overwrite" in str(exc.value)
    assert str(exc.value).endswith("Operation cancelled.")


def test_createmd_force(run_all):
    run_all.add("drbdadm -- --force create-md r0", f"{H}drbdadm.createmd_force_existing.txt")
    assert drbd.createmd("r0", force=True) is True


def test_createmd_refuses_filesystem_even_forced(run_all):
    run_all.add("drbdadm -- --force create-md r0", f"{H}drbdadm.createmd_over_filesystem.txt")
    with pytest.raises(CommandExecutionError, match="Operation refused"):
        drbd.createmd("r0", force=True)


def test_version_caches_only_a_loaded_module(run_all):
    run_all.add("drbdadm --version", f"{H}drbdadm.version_no_module.txt")
    assert drbd.version() == {"utils": "9.22.0", "kernel": None, "api": 2}
    drbd.version()
    assert run_all.calls.count("drbdadm --version") == 2


def test_check_config(run_all):
    run_all.add("drbdadm -c /etc/drbd.d/r0.res dump all", f"{H}drbdadm.check_config_ok.txt")
    run_all.add("drbdadm -c /tmp/bad.res dump all", f"{H}drbdadm.check_config_parse_error.txt")
    assert drbd.check_config("/etc/drbd.d/r0.res") == {
        "valid": True,
        "resources": ["r0"],
        "error": None,
    }
    bad = drbd.check_config("/tmp/bad.res")
    assert bad["valid"] is False
    assert "Parse error" in bad["error"]


def test_actions_and_errors(run_all):
    run_all.add("drbdadm up r0", OK)
    run_all.add("drbdadm primary --force r0", OK)
    run_all.add("drbdadm secondary r0", OK)
    assert drbd.up("r0") is True
    assert drbd.primary("r0", force=True) is True
    assert drbd.secondary("r0") is True
    run_all.add("drbdadm connect --discard-my-data r0", OK)
    run_all.add("drbdadm connect r0", OK)
    assert drbd.connect("r0", discard_my_data=True) is True
    assert drbd.connect("r0") is True
    assert run_all.calls[-2:] == ["drbdadm connect --discard-my-data r0", "drbdadm connect r0"]
    run_all.add("drbdadm primary nosuch", f"{H}drbdadm.role_nosuch.txt")
    with pytest.raises(CommandExecutionError, match="'nosuch'"):
        drbd.primary("nosuch")


def test_wait_sync(run_all, monkeypatch):
    monkeypatch.setattr(drbd.time, "sleep", lambda _s: None)
    run_all.add(
        VS,
        f"{D}01-connected-inconsistent.vm1.drbdsetup_status_vs.txt",
        f"{D}03-synced-pri-sec.vm1.drbdsetup_status_vs.txt",
    )
    assert drbd.wait_sync("r0", timeout=30) is True
    assert run_all.calls.count(VS) == 2


def test_wait_sync_timeout_and_down(run_all):
    run_all.add(VS, f"{D}01-connected-inconsistent.vm1.drbdsetup_status_vs.txt")
    assert drbd.wait_sync("r0", timeout=0) is False
    run_all.add(VS, f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_status_vs.txt")
    run_all.add("drbdadm dump all", f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt")
    with pytest.raises(CommandExecutionError, match="is down"):
        drbd.wait_sync("r0", timeout=0)


def test_split_brain_connected(run_all):
    run_all.add(VS, f"{D}09-ocfs2-mounted.vm1.drbdsetup_status_vs.txt")
    assert drbd.split_brain("r0") == {
        "split_brain": False,
        "connection": "Connected",
        "evidence": "peer connection",
    }


def test_virtual_without_binary(monkeypatch):
    monkeypatch.setattr(drbd.salt.utils.path, "which", lambda _name: None)
    assert drbd.__virtual__() == (False, "drbdadm not found: install drbd-utils")


def test_initial_promotion_is_forced_only_on_a_new_pair():
    state = load_loader_module("states", "drbd")
    new_pair = parse.status(output(f"{D}01-connected-inconsistent.vm2.drbdadm_status.txt"))
    assert state._initial_force(new_pair["r0"]) == (True, None)
    synced = parse.status(output(f"{D}03-synced-pri-sec.vm2.drbdsetup_status_vs.txt"))
    assert state._initial_force(synced["r0"]) == (False, None)
    text = raw(f"{D}13-drbd-down.vm2.secondary_down.txt")
    gone = parse.status(text.split("+ drbdadm status r0\n", 1)[1].split("+ echo", 1)[0])
    assert state._initial_force(gone["r0"]) == (False, None)  # UpToDate: plain promotion
