"""
drbd module and states through Salt's loaders, replaying real DRBD 8.4 recordings.

Every state runs under ``testmode`` (test=True and a real apply). A real apply is followed
by a second run that must report no changes and run no further action.
"""

import pytest

D = "drbd-ocfs2/"
H = "drbd-ocfs2/host-tools/"
VS = "drbdsetup status r0 --verbose --statistics"


def vs(stage):
    return f"{D}{stage}.drbdsetup_status_vs.txt"


def _check(ret, testmode, changes, comment):
    if testmode:
        assert ret.result is None, ret.comment
    else:
        assert ret.result is True, ret.comment
    assert ret.changes == changes
    assert comment in ret.comment


def test_module_status_through_loader(modules, fake_cmd):
    fake_cmd.set(
        {
            VS: vs("04-dual-primary.vm2"),
            "drbdadm dump all": f"{D}04-dual-primary.vm2.drbdadm_dump.txt",
        }
    )
    status = modules.drbd.status()
    assert status["r0"]["role"] == "Primary"
    assert status["r0"]["peers"][0]["role"] == "Primary"
    assert modules.drbd.is_synced("r0") is True
    assert modules.drbd.config()["r0"]["hosts"]["node2"]["address"] == "10.99.0.2:7789"


def test_module_down_and_unknown(modules, fake_cmd):
    fake_cmd.set(
        {
            VS: vs("13-drbd-down-module-loaded.vm2"),
            "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
            "drbdadm role r0": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_role.txt",
        }
    )
    assert modules.drbd.status("r0")["r0"]["up"] is False
    assert modules.drbd.role("r0") == {"local": "Unconfigured", "peer": None}


def test_module_unknown_raises(modules, fake_cmd):
    from salt.exceptions import CommandExecutionError

    fake_cmd.set({"drbdadm role nosuch": f"{H}drbdadm.role_nosuch.txt"})
    with pytest.raises(CommandExecutionError, match="DRBD resource 'nosuch' is not defined"):
        modules.drbd.role("nosuch")


def test_metadata_created(states, fake_cmd, testmode):
    fake_cmd.set({"drbdadm dstate r0": f"{H}drbdadm.dstate_no_metadata.txt"})
    fake_cmd.on(
        "drbdadm create-md r0",
        f"{H}drbdadm.createmd_blank.txt",
        then={"drbdadm dstate r0": f"{H}drbdadm.dstate_new_metadata.txt"},
    )
    ret = states.drbd.metadata_created(name="r0", test=testmode)
    _check(ret, testmode, {"metadata": {"old": None, "new": "created"}}, "resource r0")
    if testmode:
        assert not fake_cmd.ran("drbdadm create-md")
        return
    again = states.drbd.metadata_created(name="r0")
    assert again.result is True
    assert again.changes == {}
    assert "already has metadata" in again.comment
    assert len(fake_cmd.ran("drbdadm create-md")) == 1


@pytest.mark.parametrize(
    "dstate",
    [
        f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dstate.txt",  # down: Consistent
        f"{D}03-synced-pri-sec.vm1.drbdadm_dstate.txt",  # up: UpToDate/UpToDate
    ],
)
def test_metadata_existing_is_never_touched(states, fake_cmd, testmode, dstate):
    fake_cmd.set({"drbdadm dstate r0": dstate})
    ret = states.drbd.metadata_created(name="r0", force=True, test=testmode)
    assert ret.result is True
    assert ret.changes == {}
    assert not fake_cmd.ran("drbdadm create-md")
    assert not fake_cmd.ran("drbdadm -- --force")


def test_metadata_refuses_filesystem(states, fake_cmd):
    fake_cmd.set(
        {
            "drbdadm dstate r0": f"{H}drbdadm.dstate_no_metadata.txt",
            "drbdadm create-md r0": f"{H}drbdadm.createmd_over_filesystem.txt",
        }
    )
    ret = states.drbd.metadata_created(name="r0")
    assert ret.result is False
    assert "Operation refused" in ret.comment
    assert "Found ext3 filesystem" in ret.comment


def test_up(states, fake_cmd, testmode):
    fake_cmd.set(
        {
            VS: vs("13-drbd-down-module-loaded.vm2"),
            "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
        }
    )
    fake_cmd.on("drbdadm up r0", then={VS: vs("01-connected-inconsistent.vm2")})
    ret = states.drbd.up(name="r0", test=testmode)
    _check(ret, testmode, {"state": {"old": "down", "new": "up"}}, "r0")
    if testmode:
        assert not fake_cmd.ran("drbdadm up")
        return
    again = states.drbd.up(name="r0")
    assert (again.result, again.changes) == (True, {})
    assert len(fake_cmd.ran("drbdadm up")) == 1


def test_primary_initial_forces_only_on_new_pair(states, fake_cmd, testmode):
    fake_cmd.set({VS: vs("01-connected-inconsistent.vm1")})
    fake_cmd.on("drbdadm primary --force r0", then={VS: vs("03-synced-pri-sec.vm1")})
    ret = states.drbd.primary(name="r0", initial=True, test=testmode)
    _check(ret, testmode, {"role": {"old": "Secondary", "new": "Primary"}}, "--force")
    if testmode:
        assert not fake_cmd.ran("drbdadm primary")
        return
    again = states.drbd.primary(name="r0", initial=True)
    assert (again.result, again.changes) == (True, {})
    assert fake_cmd.ran("drbdadm primary") == ["drbdadm primary --force r0"]


def test_primary_without_initial_never_forces(states, fake_cmd, testmode):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm2")})
    fake_cmd.on("drbdadm primary r0", then={VS: vs("04-dual-primary.vm2")})
    ret = states.drbd.primary(name="r0", initial=True, test=testmode)
    _check(ret, testmode, {"role": {"old": "Secondary", "new": "Primary"}}, "r0")
    assert "--force" not in ret.comment
    if not testmode:
        again = states.drbd.primary(name="r0")
        assert (again.result, again.changes) == (True, {})
        assert fake_cmd.ran("drbdadm primary") == ["drbdadm primary r0"]


def test_primary_down_fails(states, fake_cmd):
    fake_cmd.set(
        {
            VS: vs("13-drbd-down-module-loaded.vm2"),
            "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
        }
    )
    ret = states.drbd.primary(name="r0")
    assert ret.result is False
    assert "is down" in ret.comment


def test_secondary(states, fake_cmd, testmode):
    fake_cmd.set({VS: vs("04-dual-primary.vm1")})
    fake_cmd.on("drbdadm secondary r0", then={VS: vs("03-synced-pri-sec.vm2")})
    ret = states.drbd.secondary(name="r0", test=testmode)
    _check(ret, testmode, {"role": {"old": "Primary", "new": "Secondary"}}, "r0")
    if not testmode:
        again = states.drbd.secondary(name="r0")
        assert (again.result, again.changes) == (True, {})
        assert len(fake_cmd.ran("drbdadm secondary")) == 1


def test_synced_waits(states, fake_cmd, testmode):
    fake_cmd.seq(VS, [vs("01-connected-inconsistent.vm1")] * 2 + [vs("03-synced-pri-sec.vm1")])
    ret = states.drbd.synced(name="r0", timeout=30, test=testmode)
    if testmode:
        assert ret.result is None
        assert "would wait up to 30 s" in ret.comment
        assert "Inconsistent" in ret.comment
    else:
        assert ret.result is True, ret.comment
        assert "in sync after" in ret.comment
        again = states.drbd.synced(name="r0", timeout=30)
        assert (again.result, again.changes, again.comment) == (
            True,
            {},
            "DRBD resource r0 is in sync",
        )
    assert ret.changes == {}


def test_synced_timeout(states, fake_cmd):
    fake_cmd.set({VS: vs("01-connected-inconsistent.vm1")})
    ret = states.drbd.synced(name="r0", timeout=0)
    assert ret.result is False
    assert "not in sync after 0 s" in ret.comment


def test_dual_primary_promotes_this_node(states, fake_cmd, testmode):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm2")})
    fake_cmd.on("drbdadm primary r0", then={VS: vs("04-dual-primary.vm2")})
    ret = states.drbd.dual_primary(name="r0", timeout=10, test=testmode)
    _check(ret, testmode, {"role": {"old": "Secondary", "new": "Primary"}}, "r0")
    if testmode:
        assert "promote this node" in ret.comment
        return
    again = states.drbd.dual_primary(name="r0", timeout=10)
    assert (again.result, again.changes) == (True, {})
    assert "already dual primary" in again.comment
    assert len(fake_cmd.ran("drbdadm primary")) == 1


def test_dual_primary_waits_for_the_peer(states, fake_cmd, testmode):
    fake_cmd.seq(VS, [vs("03-synced-pri-sec.vm1")] * 2 + [vs("04-dual-primary.vm1")])
    ret = states.drbd.dual_primary(name="r0", timeout=10, test=testmode)
    if testmode:
        assert ret.result is None
        assert "wait up to 10 s for the peer (now Secondary)" in ret.comment
    else:
        assert ret.result is True, ret.comment
    assert ret.changes == {}
    assert not fake_cmd.ran("drbdadm primary")


def test_dual_primary_peer_never_comes(states, fake_cmd):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm1")})
    ret = states.drbd.dual_primary(name="r0", timeout=0)
    assert ret.result is False
    assert "the peer is Secondary after 0 s" in ret.comment


# --- failure paths: what a failed run reports (pinned for the shared skeleton, mc_flow) ---

# drbdadm's refusal, as a stand-in (no refused promotion is recorded): only its rc matters
REFUSED = {
    "stdout": "",
    "stderr": "r0: State change failed: (-2) Need access to UpToDate data",
    "retcode": 17,
}


@pytest.mark.parametrize(
    ("fun", "table", "action", "comment"),
    [
        (
            "metadata_created",
            {"drbdadm dstate r0": f"{H}drbdadm.dstate_no_metadata.txt"},
            "drbdadm create-md r0",
            "create-md ran but resource r0 still shows no valid metadata",
        ),
        (
            "up",
            {
                VS: vs("13-drbd-down-module-loaded.vm2"),
                "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
            },
            "drbdadm up r0",
            "drbdadm up ran but resource r0 is still down",
        ),
        (
            "primary",
            {VS: vs("03-synced-pri-sec.vm2")},
            "drbdadm primary r0",
            "drbdadm primary ran but resource r0 is Secondary",
        ),
        (
            "secondary",
            {VS: vs("04-dual-primary.vm1")},
            "drbdadm secondary r0",
            "drbdadm secondary ran but resource r0 is still Primary",
        ),
    ],
)
def test_an_action_that_does_not_take_fails_without_changes(
    states, fake_cmd, fun, table, action, comment
):
    fake_cmd.set(table)
    fake_cmd.on(action)  # accepted, but the read-back sees no difference
    ret = getattr(states.drbd, fun)(name="r0")
    assert (ret.result, ret.changes, ret.comment) == (False, {}, comment)
    assert len(fake_cmd.ran(action)) == 1


def test_primary_refused_reports_no_changes(states, fake_cmd):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm2")})
    fake_cmd.on("drbdadm primary r0", REFUSED)
    ret = states.drbd.primary(name="r0")
    assert (ret.result, ret.changes) == (False, {})
    assert "State change failed" in ret.comment
    assert "'drbdadm primary r0'" in ret.comment


def test_synced_timeout_reports_no_changes(states, fake_cmd):
    fake_cmd.set({VS: vs("01-connected-inconsistent.vm1")})
    ret = states.drbd.synced(name="r0", timeout=0)
    assert (ret.result, ret.changes) == (False, {})
    assert ret.comment == (
        "DRBD resource r0 not in sync after 0 s (local disk Inconsistent, peer disk Inconsistent)"
    )


def test_dual_primary_does_not_promote_out_of_sync(states, fake_cmd):
    fake_cmd.set({VS: vs("01-connected-inconsistent.vm1")})
    ret = states.drbd.dual_primary(name="r0", timeout=0)
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {},
        "DRBD resource r0 not in sync after 0 s: not promoting",
    )
    assert not fake_cmd.ran("drbdadm primary")


def test_dual_primary_peer_timeout_after_promotion_reports_the_promotion(states, fake_cmd):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm2")})
    # promoted here, and the peer went Secondary meanwhile (vm1's view: Primary/Secondary)
    fake_cmd.on("drbdadm primary r0", then={VS: vs("03-synced-pri-sec.vm1")})
    ret = states.drbd.dual_primary(name="r0", timeout=0)
    assert (ret.result, ret.changes, ret.comment) == (
        False,
        {"role": {"old": "Secondary", "new": "Primary"}},
        "DRBD resource r0 is Primary here but the peer is Secondary after 0 s",
    )


def test_dual_primary_refused_reports_the_planned_promotion(states, fake_cmd):
    fake_cmd.set({VS: vs("03-synced-pri-sec.vm2")})
    fake_cmd.on("drbdadm primary r0", REFUSED)
    ret = states.drbd.dual_primary(name="r0", timeout=0)
    assert (ret.result, ret.changes) == (False, {"role": {"old": "Secondary", "new": "Primary"}})
    assert "State change failed" in ret.comment


def test_refusals_before_acting(states, fake_cmd):
    fake_cmd.set(
        {
            VS: vs("13-drbd-down-module-loaded.vm2"),
            "drbdadm dump all": f"{D}13-drbd-down-module-loaded.vm2.drbdadm_dump.txt",
        }
    )
    for fun, comment in [
        ("synced", "DRBD resource r0 is down: it cannot sync"),
        ("dual_primary", "DRBD resource r0 is down: bring it up first"),
    ]:
        ret = getattr(states.drbd, fun)(name="r0", test=True)
        assert (ret.result, ret.changes, ret.comment) == (False, {}, comment)
    assert fake_cmd.unexpected == []
