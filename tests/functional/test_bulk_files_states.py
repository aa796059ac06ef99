"""
The one-state-for-every-domain file states (issue 14.2): ``mailcluster_files.client_sites``
(the web role's client files) and ``mailcluster_files.dkim_keys`` (the mail nodes' DKIM keys),
run for real (``state.single``, masterless, the repo's modules) on a folder of this test,
over the lab pillar and the lab pillar with one more domain. Checked: a domain added or
dropped changes exactly that domain's files, ``test=True`` predicts exactly that, a second
run changes nothing (under ``test=True`` too), the files are what the per-domain
``file.managed`` states wrote (Salt's own template rendering), and no key reaches the output.
"""

import grp
import json
import os
import pathlib
import pwd
import stat

import pytest
from test_roles_support import pillar_copy, run_node

CLIENT_FILES = (
    ".well-known/mta-sts.txt",
    "mail/config-v1.1.xml",
    "autodiscover/autodiscover.xml",
)
ADDED = """
mailcluster:
  domains:
    added.test:
      mailboxes: []
"""
#: pillar data standing in for the master's ext_pillar (no master here): a key per domain
KEYS = {
    "example.test": "-----BEGIN PRIVATE KEY-----\nexample-secret-line\n-----END PRIVATE KEY-----\n",
    "sales.test": "-----BEGIN PRIVATE KEY-----\nsales-secret-line\n-----END PRIVATE KEY-----",
}


def _single(fun, name, test, **kwargs):
    return ["state.single", [fun, name], {"test": test, **kwargs}]


def _one(ret):
    assert isinstance(ret, dict) and len(ret) == 1, ret
    return next(iter(ret.values()))


def _runs(tmp, pillar_root, fun, name, **kwargs):
    """test=True, apply, test=True, apply again: the four results."""
    calls = [_single(fun, name, t, **kwargs) for t in (True, False, True, False)]
    return [_one(r) for r in run_node(tmp, "ns1", calls, pillar_root)]


def _files(root):
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*") if p.is_file())


def _settled(second, again):
    for ret in (second, again):
        assert ret["result"] is True and ret["changes"] == {}, ret


@pytest.fixture
def client_root(tmp_path):
    root = tmp_path / "clients"
    (root / "gone.test").mkdir(parents=True)
    (root / "gone.test" / "stray.txt").write_text("a domain no longer served\n")
    return root


def _lab_sites(tmp, root):
    return _runs(tmp, pillar_copy(tmp, None), "mailcluster_files.client_sites", str(root))


def test_client_sites_write_every_served_domain_and_remove_the_rest(tmp_path, client_root):
    predicted, done, *rest = _lab_sites(tmp_path / "lab", client_root)
    want = sorted(f"{d}/{f}" for d in ("example.test", "sales.test") for f in CLIENT_FILES)
    assert predicted["result"] is None
    assert predicted["changes"] == {"write": want, "remove": ["gone.test/stray.txt", "gone.test/"]}
    assert done["result"] is True and done["changes"] == predicted["changes"], done
    _settled(*rest)
    assert _files(client_root) == want


def test_client_sites_added_domain_changes_only_its_files(tmp_path, client_root):
    _lab_sites(tmp_path / "lab", client_root)
    before = {f: (client_root / f).stat().st_mtime_ns for f in _files(client_root)}
    predicted, done, *rest = _runs(
        tmp_path / "b",
        pillar_copy(tmp_path / "b", ADDED),
        "mailcluster_files.client_sites",
        str(client_root),
    )
    added = sorted(f"added.test/{f}" for f in CLIENT_FILES)
    assert predicted["result"] is None and predicted["changes"] == {"write": added}, predicted
    assert done["changes"] == {"write": added}, done
    _settled(*rest)
    assert {f: (client_root / f).stat().st_mtime_ns for f in before} == before  # untouched
    # dropped again: exactly its files and folders go
    predicted, done, *rest = _lab_sites(tmp_path / "c", client_root)
    folders = ["added.test/.well-known/", "added.test/autodiscover/", "added.test/mail/"]
    assert predicted["changes"] == {"remove": [*added, *folders, "added.test/"]}, predicted
    assert done["changes"] == predicted["changes"], done
    _settled(*rest)
    assert sorted(before) == _files(client_root)


def test_client_files_are_what_the_per_domain_templates_rendered(tmp_path):
    root = pillar_copy(tmp_path, ADDED)
    sites, files = run_node(
        tmp_path, "ns1", [["mailcluster_records.client_sites"], ["mailcluster_clients.files"]], root
    )
    site = next(s for s in sites if s["domain"] == "added.test")
    repo = pathlib.Path(__file__).resolve().parents[2]
    calls = [
        [
            "file.apply_template_on_contents",
            [(repo / "salt/web/files" / name).read_text()],
            {"template": "jinja", "context": {"site": site}, "defaults": None, "saltenv": "base"},
        ]
        for name in ("autoconfig.xml.jinja", "autodiscover.xml.jinja")
    ]
    autoconfig, autodiscover = run_node(tmp_path / "salt", "ns1", calls, root)
    assert files["added.test/mail/config-v1.1.xml"] == autoconfig
    assert files["added.test/autodiscover/autodiscover.xml"] == autodiscover
    assert (
        files["added.test/.well-known/mta-sts.txt"] == site["mta_sts"]["text"].rstrip("\n") + "\n"
    )


def test_dkim_keys_write_each_key_once_and_report_no_key(tmp_path):
    user = pwd.getpwuid(os.getuid()).pw_name
    key_dir = tmp_path / "dkim"
    key_dir.mkdir()
    (key_dir / "other.file").write_text("not ours: left alone\n")
    extra = json.dumps(
        {"mailcluster_dkim": {d: {"selector": "s1", "private": k} for d, k in KEYS.items()}}
    )
    kwargs = {"user": user, "group": grp.getgrgid(os.getgid()).gr_name}
    # mx1: a mail node (the keys are this node's)
    calls = [
        _single("mailcluster_files.dkim_keys", str(key_dir), t, **kwargs)
        for t in (True, False, True, False)
    ]
    rets = [_one(r) for r in run_node(tmp_path / "n", "mx1", calls, pillar_copy(tmp_path, extra))]
    names = ["example.test.s1.key", "sales.test.s1.key"]
    assert rets[0]["result"] is None and rets[0]["changes"] == {"write": names}, rets[0]
    assert rets[1]["result"] is True and rets[1]["changes"] == {"write": names}, rets[1]
    _settled(*rets[2:])
    assert (key_dir / "example.test.s1.key").read_text() == KEYS["example.test"]
    assert (key_dir / "sales.test.s1.key").read_text() == KEYS["sales.test"] + "\n"
    assert {stat.S_IMODE((key_dir / n).stat().st_mode) for n in names} == {0o640}
    assert (key_dir / "other.file").exists()
    text = json.dumps(rets)
    assert "secret-line" not in text
