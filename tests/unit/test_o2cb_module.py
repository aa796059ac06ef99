"""Unit tests for _modules/o2cb.py, fed with real ocfs2-tools 1.8.7 output."""

import pytest
from mc_unit_helpers import OK, command_module_dunders, load_loader_module, output, raw
from salt.exceptions import CommandExecutionError

o2cb = load_loader_module("modules", "o2cb")
parse = load_loader_module("modules", "o2cb_parse")

D = "drbd-ocfs2/"
H = "drbd-ocfs2/host-tools/"

PROBECLU_NODES = {
    "node1": {"number": 1, "ip_address": "10.99.0.1", "ip_port": 7777},
    "node2": {"number": 2, "ip_address": "10.99.0.2", "ip_port": 7777},
}


@pytest.mark.parametrize("stage", ["05-o2cb-online.vm1", "09-ocfs2-mounted.vm2"])
def test_parse_nodes_and_cluster(stage):
    assert parse.nodes(output(f"{D}{stage}.o2cb_list_nodes.txt")) == PROBECLU_NODES
    assert parse.cluster(output(f"{D}{stage}.o2cb_list_cluster.txt")) == {
        "name": "probeclu",
        "heartbeat_mode": "local",
        "node_count": 2,
        "nodes": PROBECLU_NODES,
    }


def test_parse_cluster_conf_file_layout():
    """cluster.conf itself uses the same stanza syntax, in another key order."""
    assert parse.nodes(output(f"{D}05-o2cb-online.vm1.cluster_conf.txt")) == PROBECLU_NODES


def test_parse_add_node_without_number_writes_zero():
    """12: the tool's own quirk that add_node works around."""
    text = raw(f"{D}12-o2cb-config-commands.vm2.txt")
    block = text.split("+ o2cb --config-file=/tmp/t.conf list-nodes testclu\n", 1)[1]
    block = block.split("+ o2cb", 1)[0]
    assert parse.nodes(block)["nodeB"]["number"] == 0


def test_parse_global_heartbeat_mode():
    parsed = parse.cluster(output(f"{H}o2cb.list_cluster_global.txt"))
    assert parsed["heartbeat_mode"] == "global"
    assert parsed["nodes"]["mx2"] == {"number": 2, "ip_address": "10.88.0.12", "ip_port": 7777}


def test_parse_empty_cluster():
    assert parse.cluster(output(f"{H}o2cb.list_cluster_empty.txt")) == {
        "name": "mail",
        "heartbeat_mode": "local",
        "node_count": 0,
        "nodes": {},
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (f"{D}05-o2cb-online.vm1.o2cb_cluster_status.txt", ("probeclu", True)),
        (f"{D}09-ocfs2-mounted.vm2.o2cb_cluster_status_name.txt", ("probeclu", True)),
        (f"{H}o2cb.cluster_status_offline.txt", (None, False)),
    ],
)
def test_parse_cluster_status(fixture, expected):
    assert parse.cluster_status(output(fixture)) == expected


def test_errors_are_found_even_with_rc_0():
    assert parse.errors(output(f"{H}o2cb.list_cluster_nosuch.txt")) == [
        "o2cb: Unknown cluster 'nosuch'"
    ]
    assert parse.errors(output(f"{H}o2cb.add_cluster_dup.txt")) == [
        "o2cb: Cluster 'mail' already exists"
    ]
    # the "no cluster stack" noise is not an error of its own
    assert parse.errors(output(f"{H}o2cb.cluster_status_offline.txt")) == []


def test_parse_mounted_both_nodes():
    parsed = parse.mounted(
        output(f"{D}09-ocfs2-mounted.vm1.mounted_ocfs2_d.txt"),
        output(f"{D}09-ocfs2-mounted.vm1.mounted_ocfs2_f.txt"),
    )
    volume = {
        "stack": "o2cb",
        "cluster": "probeclu",
        "flags": "",
        "uuid": "16D0AC661DC14E8A99BAA0A3CBF1FAD4",
        "label": "probevol",
        "nodes": ["node1", "node2"],
    }
    assert parsed == {"/dev/vdb": volume, "/dev/drbd0": volume}


@pytest.mark.parametrize(
    ("d", "f"),
    [
        (
            f"{D}05-o2cb-online.vm1.mounted_ocfs2_d.txt",
            f"{D}05-o2cb-online.vm1.mounted_ocfs2_f.txt",
        ),
        (f"{H}o2cb.mounted_d_none.txt", f"{H}o2cb.mounted_f_none.txt"),
    ],
)
def test_parse_mounted_nothing(d, f):
    assert parse.mounted(output(d), output(f)) == {}


def test_parse_blkid_real_line():
    text = raw(f"{D}09-ocfs2-mounted.vm1.extra_hb_tunefs_debugfs.txt")
    line = next(x for x in text.splitlines() if x.startswith("/dev/drbd0:"))
    assert parse.blkid(line) == {
        "LABEL": "probevol",
        "UUID": "16d0ac66-1dc1-4e8a-99ba-a0a3cbf1fad4",
        "BLOCK_SIZE": "4096",
        "TYPE": "ocfs2",
    }


def test_parse_defaults_and_render(tmp_path):
    text = (
        "# O2CB_ENABLED: 'true' means to load the driver on boot.\n"
        "O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=mail\nO2CB_HEARTBEAT_THRESHOLD=11\n"
    )
    values = parse.defaults(text)
    assert values["O2CB_BOOTCLUSTER"] == "mail"
    assert parse.timeouts(text) == {
        "dead_threshold": 11,
        "idle_timeout_ms": 30000,
        "keepalive_delay_ms": 2000,
        "reconnect_delay_ms": 2000,
    }
    rendered = parse.render_defaults(text, {"O2CB_HEARTBEAT_THRESHOLD": 7, "O2CB_X": 1})
    assert rendered.splitlines()[0].startswith("# O2CB_ENABLED")
    assert "O2CB_HEARTBEAT_THRESHOLD=7" in rendered
    assert rendered.endswith("O2CB_X=1\n")


# --- through __salt__ -----------------------------------------------------------------


@pytest.fixture
def configure_loader_modules(run_all):
    return command_module_dunders(o2cb, "o2cb_parse", run_all)


def test_cluster_status_online(run_all):
    run_all.add(
        "o2cb cluster-status probeclu", f"{D}05-o2cb-online.vm1.o2cb_cluster_status_name.txt"
    )
    assert o2cb.cluster_status("probeclu") == {"name": "probeclu", "online": True}


def test_cluster_status_offline_known_and_unknown(run_all):
    run_all.add("o2cb cluster-status mail", f"{H}o2cb.cluster_status_offline.txt")
    run_all.add("o2cb cluster-status nosuch", f"{H}o2cb.cluster_status_nosuch.txt")
    run_all.add("o2cb list-clusters", f"{H}o2cb.list_clusters_one.txt")
    assert o2cb.cluster_status("mail") == {"name": "mail", "online": False}
    with pytest.raises(CommandExecutionError, match="'nosuch'"):
        o2cb.cluster_status("nosuch")


def test_list_nodes_unknown_cluster_rc0_is_an_error(run_all):
    run_all.add("o2cb list-nodes nosuch", f"{H}o2cb.list_nodes_nosuch.txt")
    with pytest.raises(CommandExecutionError, match="Unknown cluster 'nosuch'") as exc:
        o2cb.list_nodes("nosuch")
    assert "o2cb list-nodes nosuch" in str(exc.value)


def test_cluster_info(run_all):
    run_all.add("o2cb list-clusters", f"{D}09-ocfs2-mounted.vm1.o2cb_list_clusters.txt")
    run_all.add("o2cb list-cluster probeclu", f"{D}09-ocfs2-mounted.vm1.o2cb_list_cluster.txt")
    assert o2cb.cluster_info("probeclu")["nodes"] == PROBECLU_NODES
    assert o2cb.cluster_info("other") is None
    assert o2cb.heartbeat_mode("probeclu") == "local"


def test_add_node_always_numbers(run_all):
    run_all.add("o2cb list-nodes mail", f"{D}05-o2cb-online.vm1.o2cb_list_nodes.txt")
    run_all.add("o2cb add-node mail mx3 --ip 10.88.0.13 --port 7777 --number 3", OK)
    assert o2cb.add_node("mail", "mx3", "10.88.0.13") == 3
    run_all.add("o2cb add-node mail mx1 --ip 10.88.0.11 --port 7777 --number 1", OK)
    assert o2cb.add_node("mail", "mx1", "10.88.0.11", number=1) == 1


def test_add_cluster_duplicate_and_bad_ip(run_all):
    run_all.add("o2cb add-cluster mail", f"{H}o2cb.add_cluster_dup.txt")
    with pytest.raises(CommandExecutionError, match="already exists"):
        o2cb.add_cluster("mail")
    run_all.add(
        "o2cb add-node mail mx3 --ip notanip --port 7777 --number 3",
        f"{H}o2cb.add_node_badip.txt",
    )
    with pytest.raises(CommandExecutionError, match="Bad IP Address"):
        o2cb.add_node("mail", "mx3", "notanip", number=3)


def test_remove_unknown_node(run_all):
    run_all.add("o2cb remove-node mail nosuch", f"{H}o2cb.remove_node_nosuch.txt")
    with pytest.raises(CommandExecutionError, match="Unknown node 'nosuch'"):
        o2cb.remove_node("mail", "nosuch")


def test_mounted(run_all):
    run_all.add("mounted.ocfs2 -d", f"{D}09-ocfs2-mounted.vm2.mounted_ocfs2_d.txt")
    run_all.add("mounted.ocfs2 -f", f"{D}09-ocfs2-mounted.vm2.mounted_ocfs2_f.txt")
    assert o2cb.mounted()["/dev/drbd0"]["nodes"] == ["node1", "node2"]


def test_timeouts_roundtrip(tmp_path):
    path = tmp_path / "o2cb"
    path.write_text("O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=mail\n")
    assert o2cb.timeouts(str(path))["dead_threshold"] == 31
    changes = o2cb.set_timeouts(dead_threshold=11, idle_timeout_ms=10000, path=str(path))
    assert changes == {
        "dead_threshold": {"old": 31, "new": 11},
        "idle_timeout_ms": {"old": 30000, "new": 10000},
    }
    assert o2cb.timeouts(str(path))["idle_timeout_ms"] == 10000
    assert "O2CB_BOOTCLUSTER=mail" in path.read_text()
    assert o2cb.set_timeouts(dead_threshold=11, path=str(path)) == {}


def test_virtual_without_binary(monkeypatch):
    monkeypatch.setattr(o2cb.salt.utils.path, "which", lambda _name: None)
    assert o2cb.__virtual__() == (False, "o2cb not found: install ocfs2-tools")
