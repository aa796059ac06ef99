"""
o2cb and heartbeat modules and states through Salt's loaders, replaying real recordings
(ocfs2-tools 1.8.7 in guests and on the host, heartbeat 3.0.6 between two nodes).
"""

import pytest
from mc_recordings import heartbeat_node

D = "drbd-ocfs2/"
H = "drbd-ocfs2/host-tools/"
HB = "heartbeat/"

MX_NODES = {"mx1": {"ip": "10.88.0.11", "number": 1}, "mx2": {"ip": "10.88.0.12", "number": 2}}
MX1 = {"number": 1, "ip_address": "10.88.0.11", "ip_port": 7777}
MX2 = {"number": 2, "ip_address": "10.88.0.12", "ip_port": 7777}
ADD_MX1 = "o2cb add-node mail mx1 --ip 10.88.0.11 --port 7777 --number 1"
ADD_MX2 = "o2cb add-node mail mx2 --ip 10.88.0.12 --port 7777 --number 2"


def _expect(ret, testmode, changes):
    assert ret.result is (None if testmode else True), ret.comment
    assert ret.changes == changes


def _second_run_is_clean(states, fun, **kwargs):
    again = getattr(states.o2cb if fun.startswith("o2cb") else states.heartbeat, fun.split(".")[1])(
        **kwargs
    )
    assert again.result is True, again.comment
    assert again.changes == {}
    return again


# --- o2cb ---------------------------------------------------------------------------


def _empty_conf(fake_cmd):
    fake_cmd.set(
        {
            "o2cb list-clusters": f"{H}o2cb.list_clusters_noconf.txt",
            "o2cb cluster-status mail": f"{H}o2cb.cluster_status_offline.txt",
        }
    )
    fake_cmd.on(
        "o2cb add-cluster mail",
        f"{H}o2cb.add_cluster.txt",
        then={
            "o2cb list-clusters": f"{H}o2cb.list_clusters_one.txt",
            "o2cb list-cluster mail": f"{H}o2cb.list_cluster_empty.txt",
        },
    )
    fake_cmd.on(ADD_MX1, f"{H}o2cb.add_node_mx1.txt")
    fake_cmd.on(
        ADD_MX2,
        f"{H}o2cb.add_node_mx2.txt",
        then={"o2cb list-cluster mail": f"{H}o2cb.list_cluster_two.txt"},
    )


@pytest.mark.parametrize(
    "nodes",
    [
        MX_NODES,
        # numbers left out: assigned stably (name order), never the tool's 0
        {"mx2": "10.88.0.12", "mx1": "10.88.0.11"},
        [{"name": "mx1", "ip": "10.88.0.11"}, {"name": "mx2", "ip": "10.88.0.12", "port": 7777}],
    ],
    ids=["explicit", "numbers-assigned", "list"],
)
def test_cluster_present_from_nothing(states, fake_cmd, testmode, nodes):
    _empty_conf(fake_cmd)
    ret = states.o2cb.cluster_present(name="mail", nodes=nodes, test=testmode)
    _expect(
        ret,
        testmode,
        {
            "cluster": {"old": None, "new": "mail"},
            "nodes": {"mx1": {"old": None, "new": MX1}, "mx2": {"old": None, "new": MX2}},
        },
    )
    if testmode:
        assert not fake_cmd.ran("o2cb add")
        return
    assert fake_cmd.ran("o2cb add") == ["o2cb add-cluster mail", ADD_MX1, ADD_MX2]
    _second_run_is_clean(states, "o2cb.cluster_present", name="mail", nodes=nodes)
    assert len(fake_cmd.ran("o2cb add")) == 3


def test_cluster_present_heartbeat_mode(states, fake_cmd, testmode):
    fake_cmd.set(
        {
            "o2cb list-clusters": f"{H}o2cb.list_clusters_one.txt",
            "o2cb list-cluster mail": f"{H}o2cb.list_cluster_global.txt",
        }
    )
    fake_cmd.on(
        "o2cb heartbeat-mode mail local",
        f"{H}o2cb.heartbeat_mode_local.txt",
        then={"o2cb list-cluster mail": f"{H}o2cb.list_cluster_two.txt"},
    )
    ret = states.o2cb.cluster_present(name="mail", nodes=MX_NODES, test=testmode)
    _expect(ret, testmode, {"heartbeat_mode": {"old": "global", "new": "local"}})
    if not testmode:
        _second_run_is_clean(states, "o2cb.cluster_present", name="mail", nodes=MX_NODES)
        assert len(fake_cmd.ran("o2cb heartbeat-mode")) == 1


def test_cluster_present_renumbers_and_removes(states, fake_cmd, testmode):
    """12: the tool wrote nodeB with number 0; the state re-adds it with its number."""
    fake_cmd.set(
        {
            "o2cb list-clusters": f"{D}05-o2cb-online.vm1.o2cb_list_clusters.txt",
            "o2cb list-cluster probeclu": f"{D}05-o2cb-online.vm1.o2cb_list_cluster.txt",
            "o2cb cluster-status probeclu": f"{D}05-o2cb-online.vm1.o2cb_cluster_status.txt",
        }
    )
    fake_cmd.on("o2cb remove-node probeclu node2")
    fake_cmd.on("o2cb add-node probeclu node2 --ip 10.99.0.2 --port 7777 --number 3")
    ret = states.o2cb.cluster_present(
        name="probeclu",
        nodes={
            "node1": {"ip": "10.99.0.1", "number": 1},
            "node2": {"ip": "10.99.0.2", "number": 3},
        },
        test=testmode,
    )
    expected = {
        "nodes": {
            "node2": {
                "old": {"number": 2, "ip_address": "10.99.0.2", "ip_port": 7777},
                "new": {"number": 3, "ip_address": "10.99.0.2", "ip_port": 7777},
            }
        }
    }
    if testmode:
        _expect(ret, testmode, expected)
        return
    # nothing recorded shows node2 as number 3 afterwards: the read-back must say so
    assert ret.result is False
    assert "still differs" in ret.comment
    assert ret.changes == expected  # what was done is reported with the failure
    assert fake_cmd.ran("o2cb remove-node") == ["o2cb remove-node probeclu node2"]


def test_cluster_present_error_is_reported(states, fake_cmd):
    fake_cmd.set(
        {
            "o2cb list-clusters": f"{H}o2cb.list_clusters_noconf.txt",
            "o2cb add-cluster mail": f"{H}o2cb.add_cluster_dup.txt",
        }
    )
    ret = states.o2cb.cluster_present(name="mail", nodes=MX_NODES)
    assert (ret.result, ret.changes) == (False, {})
    assert "Cluster 'mail' already exists" in ret.comment


def test_cluster_online(states, fake_cmd, testmode):
    fake_cmd.set(
        {
            "o2cb cluster-status probeclu": f"{H}o2cb.cluster_status_offline.txt",
            "o2cb list-clusters": f"{D}05-o2cb-online.vm1.o2cb_list_clusters.txt",
        }
    )
    fake_cmd.on(
        "o2cb register-cluster probeclu",
        then={"o2cb cluster-status probeclu": f"{D}05-o2cb-online.vm1.o2cb_cluster_status.txt"},
    )
    ret = states.o2cb.cluster_online(name="probeclu", test=testmode)
    _expect(ret, testmode, {"online": {"old": False, "new": True}})
    if not testmode:
        _second_run_is_clean(states, "o2cb.cluster_online", name="probeclu")
        assert len(fake_cmd.ran("o2cb register-cluster")) == 1


def test_cluster_online_unknown_cluster(states, fake_cmd):
    fake_cmd.set(
        {
            "o2cb cluster-status nosuch": f"{H}o2cb.cluster_status_nosuch.txt",
            "o2cb list-clusters": f"{H}o2cb.list_clusters_one.txt",
        }
    )
    ret = states.o2cb.cluster_online(name="nosuch")
    assert ret.result is False
    assert "O2CB cluster 'nosuch' is not defined" in ret.comment


MKFS = (
    "mkfs.ocfs2 -b 4K -C 4K -N 2 -L mail --cluster-stack=o2cb --cluster-name=mail "
    "-J size=4M /dev/loop0"
)


def test_formatted(states, fake_cmd, testmode):
    fake_cmd.set({"blkid -p /dev/loop0": f"{H}o2cb.blkid_p_blank.txt"})
    fake_cmd.on(
        MKFS,
        f"{D}06-mkfs.vm1.mkfs_ocfs2.txt",
        then={
            "blkid -p /dev/loop0": f"{H}o2cb.blkid_p_ocfs2.txt",
            "mounted.ocfs2 -d": f"{H}o2cb.mounted_d_formatted.txt",
            "mounted.ocfs2 -f": f"{H}o2cb.mounted_f_formatted.txt",
        },
    )
    kwargs = {"name": "/dev/loop0", "cluster": "mail", "label": "mail", "slots": 2}
    ret = states.o2cb.formatted(journal_size="4M", test=testmode, **kwargs)
    new = {"type": "ocfs2", "label": "mail", "cluster": "mail", "slots": 2}
    _expect(ret, testmode, {"filesystem": {"old": None, "new": new}})
    if testmode:
        assert not fake_cmd.ran("mkfs")
        return
    again = _second_run_is_clean(states, "o2cb.formatted", journal_size="4M", **kwargs)
    assert "already holds OCFS2" in again.comment
    assert len(fake_cmd.ran("mkfs")) == 1


@pytest.mark.parametrize(
    ("blkid", "label", "message"),
    [
        (f"{H}o2cb.blkid_p_ext4.txt", "mail", "holds a ext4 filesystem"),
        (f"{H}o2cb.blkid_p_ocfs2.txt", "other", "it is never reformatted"),
    ],
)
def test_formatted_never_reformats(states, fake_cmd, testmode, blkid, label, message):
    fake_cmd.set(
        {
            "blkid -p /dev/loop0": blkid,
            "mounted.ocfs2 -d": f"{H}o2cb.mounted_d_formatted.txt",
            "mounted.ocfs2 -f": f"{H}o2cb.mounted_f_formatted.txt",
        }
    )
    ret = states.o2cb.formatted(
        name="/dev/loop0", cluster="mail", label=label, slots=2, test=testmode
    )
    assert ret.result is False
    assert message in ret.comment
    assert not fake_cmd.ran("mkfs")


def test_o2cb_module_mounted_through_loader(modules, fake_cmd):
    fake_cmd.set(
        {
            "mounted.ocfs2 -d": f"{D}09-ocfs2-mounted.vm2.mounted_ocfs2_d.txt",
            "mounted.ocfs2 -f": f"{D}09-ocfs2-mounted.vm2.mounted_ocfs2_f.txt",
        }
    )
    assert modules.o2cb.mounted()["/dev/drbd0"]["nodes"] == ["node1", "node2"]


# --- heartbeat ----------------------------------------------------------------------


def test_heartbeat_running_starts_daemon(states, fake_cmd, testmode):
    fake_cmd.set(heartbeat_node("01-stopped"))
    fake_cmd.on("service heartbeat start", then=heartbeat_node("02-running"))
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx1", "mx2"], timeout=5, test=testmode)
    _expect(ret, testmode, {"service": {"old": "stopped", "new": "running"}})
    if testmode:
        assert "would be started and wait up to 5 s for mx1, mx2" in ret.comment
        assert not fake_cmd.ran("service")
        return
    assert "active: mx1, mx2" in ret.comment
    _second_run_is_clean(states, "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"])
    assert len(fake_cmd.ran("service heartbeat start")) == 1


def test_heartbeat_running_peer_dead(states, fake_cmd, testmode):
    fake_cmd.set(heartbeat_node("05-peer-dead"))
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx1", "mx2"], timeout=0, test=testmode)
    assert ret.changes == {}
    if testmode:
        assert ret.result is None
        assert "mx2 is dead" in ret.comment
    else:
        assert ret.result is False
        assert "after 0 s: mx2 is dead" in ret.comment


def test_heartbeat_running_unknown_node(states, fake_cmd):
    fake_cmd.set(heartbeat_node("02-running"))
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx1", "mx3"], timeout=0)
    assert ret.result is False
    assert "does not know node(s) mx3" in ret.comment


@pytest.fixture
def haresources(tmp_path):
    from mc_fake_cmd import FIXTURES

    path = tmp_path / "haresources"
    path.write_text((FIXTURES / "heartbeat" / "config.haresources").read_text())
    return str(path)


def test_resources_held_takeover(states, fake_cmd, testmode, haresources):
    fake_cmd.set(heartbeat_node("02-running"))
    fake_cmd.on(
        "/usr/share/heartbeat/hb_takeover foreign",
        f"{HB}03-takeover.mx1.hb_takeover_foreign.txt",
        then=heartbeat_node("03-takeover"),
    )
    ret = states.heartbeat.resources_held(
        name="mx1-vips", which="foreign", haresources=haresources, timeout=5, test=testmode
    )
    _expect(ret, testmode, {"groups": {"old": [], "new": ["mx2"]}})
    if testmode:
        assert not fake_cmd.ran("/usr/share/heartbeat")
        return
    _second_run_is_clean(
        states,
        "heartbeat.resources_held",
        name="mx1-vips",
        which="foreign",
        haresources=haresources,
    )
    assert len(fake_cmd.ran("/usr/share/heartbeat/hb_takeover")) == 1


def test_resources_held_after_peer_death_is_clean(states, fake_cmd, testmode, haresources):
    fake_cmd.set(heartbeat_node("05-peer-dead"))
    ret = states.heartbeat.resources_held(
        name="all-vips", which="all", haresources=haresources, test=testmode
    )
    assert (ret.result, ret.changes) == (True, {})


def test_resources_held_local_ignores_rscstatus(states, fake_cmd, haresources):
    """rscstatus says 'local' on mx2 too: the answer comes from mx2's own addresses."""
    fake_cmd.set(heartbeat_node("02-running", node="mx2"))
    ret = states.heartbeat.resources_held(name="own", which="local", haresources=haresources)
    assert (ret.result, ret.changes) == (True, {})
    assert "['mx2']" in ret.comment


def test_heartbeat_module_through_loader(modules, fake_cmd):
    fake_cmd.set(heartbeat_node("05-peer-dead"))
    assert modules.heartbeat.status() == {"running": True}
    assert modules.heartbeat.nodes_status() == {"mx2": "dead", "mx1": "active"}


# --- failure paths: what a failed run reports (pinned for the shared skeleton, mc_flow) ---

# a refusal, as a stand-in (none is recorded for these commands): only its rc matters
FAILED = {"stdout": "", "stderr": "stand-in failure", "retcode": 1}


def test_cluster_online_that_does_not_take(states, fake_cmd):
    fake_cmd.set(
        {
            "o2cb cluster-status probeclu": f"{H}o2cb.cluster_status_offline.txt",
            "o2cb list-clusters": f"{D}05-o2cb-online.vm1.o2cb_list_clusters.txt",
        }
    )
    fake_cmd.on("o2cb register-cluster probeclu")
    ret = states.o2cb.cluster_online(name="probeclu")
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {},
        "register-cluster ran but o2cb cluster probeclu is still offline",
    )


def test_formatted_that_does_not_take(states, fake_cmd):
    fake_cmd.set({"blkid -p /dev/loop0": f"{H}o2cb.blkid_p_blank.txt"})
    fake_cmd.on(MKFS, f"{D}06-mkfs.vm1.mkfs_ocfs2.txt")
    ret = states.o2cb.formatted(
        name="/dev/loop0", cluster="mail", label="mail", slots=2, journal_size="4M"
    )
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {},
        "mkfs.ocfs2 ran but /dev/loop0 shows None",
    )


def test_heartbeat_running_start_fails_with_the_planned_change(states, fake_cmd):
    fake_cmd.set(heartbeat_node("01-stopped"))
    fake_cmd.on("service heartbeat start", FAILED)
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx1", "mx2"], timeout=0)
    assert (ret.result, ret.changes) == (False, {"service": {"old": "stopped", "new": "running"}})
    assert "'service heartbeat start' failed (rc=1): stand-in failure" in ret.comment


def test_heartbeat_running_started_but_not_up(states, fake_cmd):
    fake_cmd.set(heartbeat_node("01-stopped"))
    fake_cmd.on("service heartbeat start")
    ret = states.heartbeat.running(name="heartbeat", timeout=0)
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {"service": {"old": "stopped", "new": "running"}},
        "heartbeat not running after 0 s",
    )


def test_heartbeat_running_started_but_a_node_is_unknown(states, fake_cmd):
    fake_cmd.set(heartbeat_node("01-stopped"))
    fake_cmd.on("service heartbeat start", then=heartbeat_node("02-running"))
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx1", "mx3"], timeout=0)
    assert (ret.result, ret.changes) == (False, {"service": {"old": "stopped", "new": "running"}})
    assert ret.comment == "heartbeat does not know node(s) mx3 (has ['mx2', 'mx1'])"


def test_heartbeat_running_unknown_node_is_refused_in_test_mode_too(states, fake_cmd):
    fake_cmd.set(heartbeat_node("02-running"))
    ret = states.heartbeat.running(name="heartbeat", nodes=["mx3"], test=True)
    assert (ret.result, ret.changes) == (False, {})
    assert "does not know node(s) mx3" in ret.comment


def test_resources_held_that_does_not_take(states, fake_cmd, haresources):
    fake_cmd.set(heartbeat_node("02-running"))
    fake_cmd.on(
        "/usr/share/heartbeat/hb_takeover foreign", f"{HB}03-takeover.mx1.hb_takeover_foreign.txt"
    )
    ret = states.heartbeat.resources_held(
        name="mx1-vips", which="foreign", haresources=haresources, timeout=0
    )
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {},
        "heartbeat did not hand over the foreign resources within 0 s (held: [])",
    )


def test_resources_held_refuses_a_bad_selection(states, fake_cmd, haresources):
    ret = states.heartbeat.resources_held(name="x", which="mine", haresources=haresources)
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {},
        "which must be local, foreign or all, not 'mine'",
    )
    assert fake_cmd.calls == []
