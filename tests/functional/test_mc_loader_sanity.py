"""The fake cmd module really replaces core cmd in Salt's loaders."""


def test_fake_cmd_is_loaded(modules, fake_cmd):
    fake_cmd.on("echo hi", {"stdout": "hi", "stderr": "", "retcode": 0})
    assert modules.cmd.run_all(["echo", "hi"])["stdout"] == "hi"
    assert fake_cmd.calls == ["echo hi"]


def test_our_modules_are_loaded(modules):
    for fun in ("drbd.status", "o2cb.cluster_status", "heartbeat.status"):
        assert fun in modules, fun
    # the parsers the command modules reach through __salt__
    for fun in ("drbd_parse.status", "o2cb_parse.nodes", "heartbeat_parse.nodestatus"):
        assert fun in modules, fun


def test_the_state_skeleton_is_loaded(states):
    assert "mc_flow.converge" in states
