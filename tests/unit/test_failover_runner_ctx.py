"""The failover runner's view of the DNS servers (pure parts of _runners/mailcluster_failover.py):
which node takes the updates, which secondary stands in for a lost primary, and the state
file that says so. The lab pillar is read from pillar/*.sls; the promotion itself runs for real
in tests/lab/test_selfheal_failover.py (test_whole_dc1_lost_with_the_dns_primary)."""

import json
import time

import pytest
from mc_unit_helpers import REPO, load_loader_module


@pytest.fixture
def runner(tmp_path):
    mod = load_loader_module("runners", "mailcluster_failover")
    mod.__opts__ = {"cachedir": str(tmp_path), "id": "salt", "file_roots": {"base": []}}
    mod.__opts__["mailcluster_roots"] = [str(REPO / "salt")]
    return mod


def _write_state(runner, state):
    path = runner._state_path()
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(state, fh)


def test_pillar_primary_takes_the_updates(runner, lab_pillar):
    ctx = runner._Ctx(lab_pillar)
    assert (ctx.dns_primary_id, ctx.dns_primary, ctx.acting) == ("ns1", "10.88.0.21", None)
    assert ctx.dns_secondaries == ["10.88.0.22"]
    assert ctx.mail_nodes == ["mx1", "mx2"]


def test_a_recorded_stand_in_takes_the_updates_and_the_lost_primary_is_left_out(runner, lab_pillar):
    _write_state(runner, {"_dns_acting": {"node": "ns2", "replaces": "ns1", "since": 1.0}})
    ctx = runner._Ctx(lab_pillar)
    assert (ctx.dns_primary_id, ctx.dns_primary) == ("ns2", "10.88.0.22")
    assert ctx.dns_secondaries == []
    # given back: the same context follows the state file when told to
    _write_state(runner, {})
    ctx.follow_state()
    assert (ctx.dns_primary_id, ctx.acting, ctx.dns_secondaries) == ("ns1", None, ["10.88.0.22"])


@pytest.mark.parametrize(
    "acting",
    [
        {"node": "mx2", "replaces": "ns1"},  # not a DNS secondary
        {"node": "ns2", "replaces": "ns3"},  # stands in for a node that is not the primary
    ],
)
def test_a_stand_in_that_does_not_fit_the_pillar_is_ignored(runner, acting, lab_pillar):
    _write_state(runner, {"_dns_acting": acting})
    ctx = runner._Ctx(lab_pillar)
    assert (ctx.dns_primary_id, ctx.acting) == ("ns1", None)


def test_candidates_outside_the_lost_primarys_data_centre_come_first(runner, lab_pillar):
    pillar = lab_pillar  # this test changes it
    nodes = pillar["mailcluster"]["nodes"]
    nodes["ns0"] = {"ip": "10.88.0.20", "dc": "dc1", "roles": ["common", "dns_secondary"]}
    nodes["ns3"] = {"ip": "10.88.0.23", "dc": "dc2", "roles": ["common", "dns_secondary"]}
    ctx = runner._Ctx(pillar)
    assert runner._promotion_candidates(ctx) == ["ns2", "ns3", "ns0"]


def test_a_zone_the_primary_does_not_answer_for_is_not_waited_on(runner, lab_pillar):
    """The propagation wait asks the primary for each zone's serial first: a zone without an
    answer (nothing serves DNS on 127.0.0.9 here) has nothing to wait for, instead of holding
    the run for the whole propagation_timeout."""
    runner.__opts__["mailcluster_roots"].append(str(REPO))  # the roles' _modules/mailcluster.py
    ctx = runner._Ctx(lab_pillar)
    ctx.settings["propagation_timeout"] = 5
    ctx.dns_primary, ctx.dns_secondaries = "127.0.0.9", []
    t0 = time.monotonic()
    report = runner._wait_serials(ctx, ["example.test"], t0)
    assert time.monotonic() - t0 < 3
    assert report["serials"] == {}
    assert report["complete"] is True
