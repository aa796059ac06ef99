"""
The shared state skeleton (``_states/mc_flow.py``) through Salt's real state loader: the
drbd, o2cb and heartbeat states reach it through ``__states__``, and it reads the test mode
Salt sets on that loader, also the one ``prereq`` switches on for a single state's dry run.
"""

D = "drbd-ocfs2/"
VS = "drbdsetup status r0 --verbose --statistics"
DOWN = {
    VS: f"{D}13-drbd-down-module-loaded.vm2.drbdsetup_status_vs.txt",
    "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
}

PREREQ_SLS = """
before-up:
  test.succeed_with_changes:
    - prereq:
      - drbd: r0-up

r0-up:
  drbd.up:
    - name: r0
"""


def test_the_skeleton_is_no_state_for_sls_files(states, fake_cmd):
    ret = states.mc_flow.converge(name="x")
    assert (ret.result, ret.changes) == (False, {})
    assert "not a state for SLS files" in ret.comment
    assert fake_cmd.calls == []


def test_prereq_dry_run_reaches_the_skeleton(modules, fake_cmd):
    """
    ``prereq`` runs ``r0-up`` with test mode switched on in the state loader first, and
    runs ``before-up`` only if that dry run predicts changes. Had the skeleton missed the
    switch, the dry run would have brought r0 up and the real run would report no change.
    """
    fake_cmd.set(DOWN)
    fake_cmd.on(
        "drbdadm up r0", then={VS: f"{D}01-connected-inconsistent.vm2.drbdsetup_status_vs.txt"}
    )
    ret = modules.state.template_str(PREREQ_SLS)
    assert not ret.failed
    before = ret["test_|-before-up_|-before-up_|-succeed_with_changes"]
    up = ret["drbd_|-r0-up_|-r0_|-up"]
    assert before.result is True
    assert before.changes  # ran: the dry run of r0-up predicted a change
    assert up.result is True
    assert up.changes == {"state": {"old": "down", "new": "up"}}
    assert fake_cmd.ran("drbdadm up") == ["drbdadm up r0"]


def test_prereq_without_a_predicted_change_skips(modules, fake_cmd):
    fake_cmd.set({VS: f"{D}01-connected-inconsistent.vm2.drbdsetup_status_vs.txt"})
    ret = modules.state.template_str(PREREQ_SLS)
    before = ret["test_|-before-up_|-before-up_|-succeed_with_changes"]
    up = ret["drbd_|-r0-up_|-r0_|-up"]
    assert before.changes == {}
    assert "No changes detected" in before.comment
    assert (up.result, up.changes) == (True, {})
    assert not fake_cmd.ran("drbdadm up")
