"""How the failover runner's modules share code (_runners/*.py, docs/selfheal.md "Pieces"):
through Salt's runner loader (``__salt__`` in a runner is the loader itself), the roles'
zones through a minion loader on the master, cached per process and rebuilt when a module
file changes, with the run's pillar handed over per call."""

import copy
import inspect
import logging
import os
import pathlib
import shutil
import threading

import pytest
import salt.loader
from mc_unit_helpers import REPO, runner_loader

SALT = pathlib.Path(salt.loader.__file__).resolve().parents[1]
RUNNERS = sorted(p.stem for p in (REPO / "_runners").glob("*.py"))
#: runners of their own (entry points of reactions, the cluster's picture and its builder,
#: the DRBD arbiter engine's verdicts), not building blocks of the failover's
ENTRY_RUNNERS = {
    "mailcluster_failover",
    "mcstore_arbiter",
    "mailcluster_peerban",
    "mailcluster_diagram",
    "mailcluster_diagram_graph",
}
BLOCKS = [name for name in RUNNERS if name not in ENTRY_RUNNERS]
ENTRY_POINTS = {
    "handle": ["tag", "data", "kwargs"],
    "failover": ["node", "kwargs"],
    "failback": ["node", "kwargs"],
    "reconcile": ["kwargs"],
    "reconcile_interval": ["default"],
    "restore_dns_primary": ["kwargs"],
    "touch_minions": [],
    "verify": ["node"],
    "status": [],
}


@pytest.fixture
def runners(tmp_path):
    return runner_loader(tmp_path)


def _module(runners, name):
    """The loaded module behind ``name`` (for its functions' signatures and docstrings)."""
    funcs = [f for key, f in runners.items() if key.startswith(f"{name}.")]
    assert funcs, f"{name} did not load"
    return inspect.getmodule(funcs[0].func)


def test_the_entry_points_keep_their_names_and_signatures(runners):
    found = {
        key.split(".", 1)[1]: list(inspect.signature(func.func).parameters)
        for key, func in runners.items()
        if key.startswith("mailcluster_failover.")
    }
    assert found == ENTRY_POINTS


@pytest.mark.parametrize("name", BLOCKS)
def test_building_blocks_say_so(runners, name):
    module = _module(runners, name)
    assert name.startswith("mcheal_")
    for fname, func in inspect.getmembers(module, inspect.isfunction):
        if fname.startswith("_") or func.__module__ != module.__name__:
            continue
        doc = (func.__doc__ or "").strip()
        assert doc.startswith("Building block of mailcluster_failover"), fname


@pytest.mark.parametrize("name", RUNNERS)
def test_no_import_tricks_no_utils_and_a_name_of_our_own(name):
    text = (REPO / "_runners" / f"{name}.py").read_text()
    assert "__utils__" not in text
    assert "importlib" not in text
    assert len(text.splitlines()) < 500
    assert (SALT / "runners" / "salt.py").exists()
    for kind in ("runners", "modules"):
        assert not (SALT / kind / f"{name}.py").exists(), kind
    assert not (REPO / "_modules" / f"{name}.py").exists()


def test_a_thread_of_parallel_reaches_salt_a_plain_one_does_not(runners):
    salt_dunder = _module(runners, "mcheal_ctx").__salt__
    seen = {}

    def look(key):
        try:
            seen[key] = salt_dunder["mcheal_store.load"]()
        except TypeError:  # no loader in this thread's context: __salt__ is None
            seen[key] = None

    def in_a_runner():
        plain = threading.Thread(target=look, args=("plain",))
        plain.start()
        plain.join()
        runners["mcheal_ctx.parallel"](lambda: look("parallel"))

    runners.run(in_a_runner)
    assert seen == {"plain": None, "parallel": {}}


def _roles_copy(tmp_path):
    """A file root with copies of the roles' modules (their mtimes are this test's)."""
    root = tmp_path / "root"
    (root / "_modules").mkdir(parents=True)
    for name in (
        "mailcluster.py",
        "mailcluster_dns.py",
        "mailcluster_memo.py",
        "mailcluster_records.py",
    ):
        shutil.copy(REPO / "_modules" / name, root / "_modules" / name)
    return root


def test_the_roles_loader_is_kept_and_rebuilt_when_a_module_changes(tmp_path, lab_pillar):
    root = _roles_copy(tmp_path)
    runners = runner_loader(tmp_path, mailcluster_roots=[str(REPO / "salt"), str(root)])
    dns = _module(runners, "mcheal_dns")
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    runners["mcheal_dns.desired"](ctx, set())
    first = dns._ROLES["loader"]
    runners["mcheal_dns.desired"](ctx, {"mx1"})
    assert dns._ROLES["loader"] is first
    # an edit of the roles' module (a new default TTL) is seen by the next call
    path = root / "_modules" / "mailcluster_dns.py"
    stat = path.stat()
    path.write_text(path.read_text().replace('"ttl": 300,', '"ttl": 301,'))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    want = runners["mcheal_dns.desired"](ctx, set())["cluster.test"]
    assert dns._ROLES["loader"] is not first
    assert ("mail", 301, "A", "10.88.0.111") in want


def test_the_runs_pillar_goes_with_each_call(runners, lab_pillar):
    ctx = runners["mcheal_ctx.context"](lab_pillar)
    want = runners["mcheal_dns.desired"](ctx, {"mx1"})
    # layout cluster: a failover reads and changes the cluster zone only
    assert set(want) == {"cluster.test"}
    assert ("mail", 300, "A", "10.88.0.112") in want["cluster.test"]
    assert ("mail", 300, "A", "10.88.0.111") not in want["cluster.test"]
    assert ("mx1.mail", 300, "A", "10.88.0.112") in want["cluster.test"]
    assert runners["mcheal_dns.zone_names"](ctx) == ["cluster.test", "example.test", "sales.test"]
    # the same process, another pillar: a domain marked absent is gone, the TTL follows
    other = dict(lab_pillar, dns={"ttl": 60})
    other["mailcluster"] = dict(lab_pillar["mailcluster"])
    other["mailcluster"]["domains"] = dict(lab_pillar["mailcluster"]["domains"])
    other["mailcluster"]["domains"]["sales.test"] = {"absent": True}
    got = runners["mcheal_dns.desired"](runners["mcheal_ctx.context"](other), set())
    assert "sales.test" not in runners["mcheal_dns.zone_names"](
        runners["mcheal_ctx.context"](other)
    )
    assert ("mail", 60, "A", "10.88.0.111") in got["cluster.test"]
    # and back: nothing of the other pillar stayed in the loader
    assert runners["mcheal_dns.desired"](ctx, {"mx1"}) == want


def test_the_roles_memo_lives_one_call_and_logs_nothing(runners, lab_pillar, caplog):
    """The roles' modules find their memo in the runner's loader (a module missing from its
    whitelist logged an error at every reconcile), and a pillar changed in place between two
    calls is read anew: the memo keys by identity and must not outlive a call."""
    pillar = copy.deepcopy(lab_pillar)
    ctx = runners["mcheal_ctx.context"](pillar)
    with caplog.at_level(logging.DEBUG):
        first = runners["mcheal_dns.desired"](ctx, set())
        pillar.setdefault("dns", {})["ttl"] = 77
        second = runners["mcheal_dns.desired"](ctx, set())
    assert ("mail", 300, "A", "10.88.0.111") in first["cluster.test"]
    assert ("mail", 77, "A", "10.88.0.111") in second["cluster.test"]
    assert not [r for r in caplog.records if "whitelist" in r.getMessage()]
