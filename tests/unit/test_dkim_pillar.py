"""The DKIM ext_pillar (_pillar/mailcluster_dkim.py) on its own: selectors from pillar, the
private key for role mail only, and one key even when several pillar compilations (the
master's workers, both mail nodes at once) ask for a new domain at the same moment."""

import multiprocessing
import stat

from mc_unit_helpers import load_loader_module

dkim = load_loader_module("pillar", "mailcluster_dkim")

PILLAR = {
    "mailcluster": {
        "domains": {"a.test": {}, "b.test": None, "gone.test": {"absent": True}},
        "nodes": {"mx1": {"roles": ["common", "mail"]}, "ns1": {"roles": ["common"]}},
    },
    "rspamd": {
        "lookup": {"dkim": {"selector": "base"}},
        "dkim": {"domains": {"b.test": {"selector": "own"}}},
    },
}


def _compile(args):
    key_dir, minion = args
    return dkim.ext_pillar(minion, PILLAR, key_dir=key_dir, bits=1024)["mailcluster_dkim"]


def test_selectors_private_keys_and_modes(tmp_path):
    mx1 = _compile((str(tmp_path), "mx1"))
    ns1 = _compile((str(tmp_path), "ns1"))
    assert {d: e["selector"] for d, e in mx1.items()} == {"a.test": "base", "b.test": "own"}
    assert all("private" in e for e in mx1.values())
    assert ns1 == {d: {"selector": e["selector"], "txt": e["txt"]} for d, e in mx1.items()}
    assert dkim.txt_record(mx1["a.test"]["private"].encode()) == mx1["a.test"]["txt"]
    assert stat.S_IMODE((tmp_path / "a.test").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a.test" / "base.key").stat().st_mode) == 0o600


def test_concurrent_compilations_make_one_key(tmp_path):
    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = pool.map(_compile, [(str(tmp_path), "mx1")] * 6)
    assert len({r["a.test"]["private"] for r in results}) == 1
    assert len({r["b.test"]["txt"] for r in results}) == 1
    assert sorted(p.name for p in (tmp_path / "a.test").iterdir()) == ["base.key", "base.txt"]


def test_names_that_are_not_dns_labels_get_nothing(tmp_path):
    bad = {
        "mailcluster": {"domains": {"../x": {}, "c.test": {}}, "nodes": {}},
        "rspamd": {"dkim": {"selector": "a/b"}},
    }
    assert dkim.ext_pillar("mx1", bad, key_dir=str(tmp_path)) == {}
    assert [p.name for p in tmp_path.iterdir()] == []
