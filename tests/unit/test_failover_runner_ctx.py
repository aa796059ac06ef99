"""The failover runner's view of the DNS servers (the pure building blocks in _runners/mcheal_*.py,
through Salt's runner loader as on the master): which node takes the updates, which secondary
stands in for a lost primary, and the state file that says so. The lab pillar is read from
pillar/*.sls; the promotion itself runs for real in tests/lab/test_selfheal_failover.py
(test_whole_dc1_lost_with_the_dns_primary)."""

import time

import pytest
from mc_unit_helpers import runner_loader


@pytest.fixture
def runners(tmp_path):
    return runner_loader(tmp_path)


def _write_state(runners, state):
    runners["mcheal_store.change"](lambda old: (old.clear(), old.update(state)))


def test_pillar_primary_takes_the_updates(runners, lab_pillar):
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    assert (ctx.dns_primary_id, ctx.dns_primary, ctx.acting) == ("ns1", "10.88.0.21", None)
    assert ctx.dns_secondaries == ["10.88.0.22"]
    assert ctx.mail_nodes == ["mx1", "mx2"]


def test_a_recorded_stand_in_takes_the_updates_and_the_lost_primary_is_left_out(
    runners, lab_pillar
):
    _write_state(runners, {"_dns_acting": {"node": "ns2", "replaces": "ns1", "since": 1.0}})
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    assert (ctx.dns_primary_id, ctx.dns_primary) == ("ns2", "10.88.0.22")
    assert ctx.dns_secondaries == []
    # given back: the same context follows the state file when told to
    _write_state(runners, {})
    runners.run(ctx.follow_state)
    assert (ctx.dns_primary_id, ctx.acting, ctx.dns_secondaries) == ("ns1", None, ["10.88.0.22"])


@pytest.mark.parametrize(
    "acting",
    [
        {"node": "mx2", "replaces": "ns1"},  # not a DNS secondary
        {"node": "ns2", "replaces": "ns3"},  # stands in for a node that is not the primary
    ],
)
def test_a_stand_in_that_does_not_fit_the_pillar_is_ignored(runners, acting, lab_pillar):
    _write_state(runners, {"_dns_acting": acting})
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    assert (ctx.dns_primary_id, ctx.acting) == ("ns1", None)


def test_candidates_outside_the_lost_primarys_data_centre_come_first(runners, lab_pillar):
    pillar = lab_pillar  # this test changes it
    nodes = pillar["mailcluster"]["nodes"]
    nodes["ns0"] = {"ip": "10.88.0.20", "dc": "dc1", "roles": ["common", "dns_secondary"]}
    nodes["ns3"] = {"ip": "10.88.0.23", "dc": "dc2", "roles": ["common", "dns_secondary"]}
    ctx = runners["mcheal_ctx.context"](pillar)
    assert runners["mcheal_primary.candidates"](ctx) == ["ns2", "ns3", "ns0"]


def test_a_zone_the_primary_does_not_answer_for_is_not_waited_on(runners, lab_pillar):
    """The propagation wait asks the primary for each zone's serial first (the roles'
    mailcluster_dns.soa_serial, in a minion loader on the master): a zone without an answer
    (nothing serves DNS on 127.0.0.9 here) has nothing to wait for, instead of holding the run
    for the whole propagation_timeout."""
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    ctx.settings["propagation_timeout"] = 5
    ctx.dns_primary, ctx.dns_secondaries = "127.0.0.9", []
    t0 = time.monotonic()
    report = runners["mcheal_dns.wait_serials"](ctx, ["example.test"], t0)
    assert time.monotonic() - t0 < 3
    assert report["serials"] == {}
    assert report["complete"] is True


# --------------------------------------------------------------------------- partitions
def test_a_partition_is_an_answering_node_its_peer_calls_dead(tmp_path):
    """What verify_lost's witnesses look like in the three cases (lab runs, issue 12.3)."""
    suspected = runner_loader(tmp_path)["mcheal_partition.suspected"]
    cut = {"master": {"answered": True}, "peer": {"status": {"mx1": "dead"}}}
    dead = {"master": {"answered": False}, "peer": {"status": {"mx1": "dead"}}}
    fine = {"master": {"answered": True}, "peer": {"status": {"mx1": "active"}}}
    assert suspected(cut) is True
    assert suspected(dead) is False
    assert suspected(fine) is False
    assert suspected({}) is False


def test_the_partition_keeper_is_stable_and_from_pillar(tmp_path):
    keeper = runner_loader(tmp_path)["mcheal_partition.keeper"]

    class Ctx:
        settings = {"partition_keeper": None}

    assert keeper(Ctx, ["mx2", "mx1"]) == "mx1"
    Ctx.settings = {"partition_keeper": "mx2"}
    assert keeper(Ctx, ["mx1", "mx2"]) == "mx2"
    # a name that is not one of the pair falls back to the stable default
    Ctx.settings = {"partition_keeper": "ns1"}
    assert keeper(Ctx, ["mx1", "mx2"]) == "mx1"
