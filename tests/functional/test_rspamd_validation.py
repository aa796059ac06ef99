"""The rspamd role's pillar and the DKIM ext_pillar, through Salt's loader (no daemons).

- bad rspamd pillar (a selector that is not a DNS label, a threshold that is not a number,
  reject below add_header, ...) is refused naming the key, by ``mailcluster.validate`` and end
  to end (a highstate in test mode and the role's SLS stop before any state runs);
- the ext_pillar ``mailcluster_dkim`` runs in Salt's own pillar compilation (a masterless
  minion configured as reactor/master.d/dkim.conf configures the master): one key per domain
  and selector, the same for every node, the private key for role mail only, a bad selector
  gets no key and no file; the role then renders the key files with their diffs hidden;
- the ext_pillar's default selector is the role's defaults.yaml's.
"""

import json
import pathlib
import stat
import subprocess
import sys

import pytest
import yaml
from test_roles_support import REPO, pillar_copy, run_node, validate_cases

HERE = pathlib.Path(__file__).resolve().parent

BAD = {
    "selector-not-a-label": (
        "rspamd: {dkim: {selector: mail_2026}}",
        "rspamd:dkim:selector: must be a DNS label",
    ),
    "selector-dotted": (
        "rspamd: {dkim: {domains: {sales.test: {selector: a.b}}}}",
        "rspamd:dkim:domains:sales.test:selector: must be a DNS label",
    ),
    "selector-leading-hyphen": (
        "rspamd: {lookup: {dkim: {selector: -mail}}}",
        "rspamd:lookup:dkim:selector: must be a DNS label",
    ),
    "threshold-not-a-number": (
        "rspamd: {actions: {reject: lots}}",
        'rspamd:actions:reject: must be a number (a score, e.g. 15 or 6.5) (got "lots")',
    ),
    "greylist-not-a-number": (
        "rspamd: {actions: {greylist: 'off'}}",
        "rspamd:actions:greylist: must be a number (a score) or null (off)",
    ),
    "reject-below-add-header": (
        "rspamd: {actions: {reject: 5, add_header: 6}}",
        "rspamd:actions:reject: must be above add_header (5 <= 6",
    ),
    "add-header-below-greylist": (
        "rspamd: {actions: {add_header: 3, greylist: 4}}",
        "rspamd:actions:add_header: must be above greylist (3 <= 4",
    ),
    "dkim-unknown-domain": (
        "rspamd: {dkim: {domains: {other.test: {selector: x}}}}",
        "rspamd:dkim:domains:other.test: not a domain of mailcluster:domains",
    ),
    "milter-not-loopback": (
        "rspamd: {milter: {address: '10.88.0.11:11332'}}",
        "rspamd:milter:address: must be a loopback address and port",
    ),
    "milter-default-action": (
        "rspamd: {milter: {default_action: reject}}",
        'rspamd:milter:default_action: must be one of "accept", "tempfail"',
    ),
    "module-switched-on": ("rspamd: {modules: {rbl: true}}", "rspamd:modules:rbl: must be false"),
    "typo": ("rspamd: {action: {}}", "rspamd:action: unknown key (allowed: lookup, enabled"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rspamd_pillar_names_the_key(bad_results, case):
    errors = bad_results[case]
    assert any(BAD[case][1] in e for e in errors), errors


def test_lab_pillar_passes(tmp_path, lab_pillar_items):
    assert validate_cases(tmp_path, lab_pillar_items, {"lab": "{}"}) == {"lab": []}


@pytest.mark.parametrize("case", ["selector-not-a-label", "reject-below-add-header"])
def test_bad_pillar_stops_the_highstate(tmp_path, case):
    extra, message = BAD[case]
    result, single = run_node(
        tmp_path,
        "mx1",
        [["state.apply", [], {"test": True}], ["state.show_sls", "rspamd"]],
        pillar_copy(tmp_path, yaml.dump(yaml.safe_load(extra))),
    )
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        text = "\n".join(v["comment"] for v in result.values())
    else:
        text = "\n".join(result)
    assert message in text, text
    assert isinstance(single, list) and message in "\n".join(single), single


# ------------------------------------------------------------------ the ext_pillar
WORKER = """
import json, sys
sys.path.insert(0, {here!r})
import salt.config
import test_roles_support as t

real = salt.config.minion_config


def with_ext_pillar(path, *args, **kwargs):
    opts = real(path, *args, **kwargs)
    # what reactor/master.d/dkim.conf gives the master
    opts["pillar_dirs"] = [{pillar_dir!r}]
    opts["ext_pillar"] = [{{"mailcluster_dkim": {{"key_dir": {key_dir!r}, "bits": 1024}}}}]
    return opts


salt.config.minion_config = with_ext_pillar
spec = json.load(open({spec!r}))
print(json.dumps(t._worker(spec), default=str))
"""


def _run_with_ext_pillar(tmp, node, key_dir, calls, pillar_root=None):
    tmp.mkdir(parents=True, exist_ok=True)
    spec = tmp / "spec.json"
    root = str(pillar_root or pillar_copy(tmp, None))
    spec.write_text(
        json.dumps({"tmp": str(tmp), "node": node, "calls": calls, "pillar_root": root})
    )
    code = WORKER.format(
        here=str(HERE), pillar_dir=str(REPO / "_pillar"), key_dir=str(key_dir), spec=str(spec)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    """pillar and rendered rspamd states of mx1, mx2 and ns1 with one shared key_dir."""
    base = tmp_path_factory.mktemp("ext")
    key_dir = base / "dkim"
    out = {"key_dir": key_dir}
    for node in ("mx1", "mx2", "ns1"):
        calls = [["pillar.item", ["mailcluster_dkim"], {"unmask": True}]]
        if node != "ns1":
            calls.append(["state.show_sls", "rspamd"])
        out[node] = _run_with_ext_pillar(base / node, node, key_dir, calls)
    return out


def test_one_key_per_domain_and_selector_the_same_on_every_node(ext):
    mx1, mx2, ns1 = (ext[n][0]["mailcluster_dkim"] for n in ("mx1", "mx2", "ns1"))
    # pillar/rspamd.sls: the cluster's selector, and sales.test's own
    assert {d: e["selector"] for d, e in mx1.items()} == {
        "example.test": "lab2026",
        "sales.test": "sales2026",
    }
    for domain, entry in mx1.items():
        assert entry["txt"].startswith("v=DKIM1; k=rsa; p=MI")
        assert entry["private"].startswith("-----BEGIN RSA PRIVATE KEY-----")
        assert mx2[domain] == entry  # the same key pair on both mail nodes
        assert ns1[domain] == {"selector": entry["selector"], "txt": entry["txt"]}  # no private
    assert mx1["example.test"]["txt"] != mx1["sales.test"]["txt"]
    key_dir = ext["key_dir"]
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    keys = sorted(str(p.relative_to(key_dir)) for p in key_dir.glob("*/*.key"))
    assert keys == ["example.test/lab2026.key", "sales.test/sales2026.key"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in key_dir.glob("*/*.key")} == {0o600}


def test_the_role_writes_every_key_in_one_state(ext):
    """One state for every domain's key (issue 14.2); its run is tested with keys in
    tests/functional/test_bulk_files_states.py (no key in its output)."""
    high = ext["mx1"][1]
    assert isinstance(high, dict), high
    assert "rspamd-config-dkim-missing-test-fail-without-changes" not in high
    assert not [k for k in high if k.startswith("rspamd-config-dkim-") and "test-file" in k]
    state = high["rspamd-config-dkim-keys-mailcluster-files-dkim-keys"]["mailcluster_files"]
    args = {k: v for item in state if isinstance(item, dict) for k, v in item.items()}
    assert args["name"] == "/var/lib/rspamd/dkim"
    assert (args["mode"], args["user"], args["group"]) == ("0640", "_rspamd", "_rspamd")


def test_a_bad_selector_gets_no_key(tmp_path):
    key_dir = tmp_path / "dkim"
    extra = "rspamd: {dkim: {domains: {sales.test: {selector: ../../etc}}}}"
    (pillar,) = _run_with_ext_pillar(
        tmp_path / "n",
        "mx1",
        key_dir,
        [["pillar.item", ["mailcluster_dkim"], {"unmask": True}]],
        pillar_copy(tmp_path, extra),
    )
    assert sorted(pillar["mailcluster_dkim"]) == ["example.test"]
    assert [p.name for p in key_dir.iterdir() if p.is_dir()] == ["example.test"]


def test_without_the_ext_pillar_the_role_names_the_missing_keys(tmp_path):
    (high,) = run_node(tmp_path, "mx1", [["state.show_sls", "rspamd"]])
    state = high["rspamd-config-dkim-missing-test-fail-without-changes"]
    name = next(i["name"] for i in state["test"] if isinstance(i, dict) and "name" in i)
    assert "mailcluster_dkim:example.test, mailcluster_dkim:sales.test: missing" in name
    assert "reactor/master.d/dkim.conf" in name


def test_default_selector_is_the_roles_default():
    defaults = yaml.safe_load((REPO / "salt/rspamd/parameters/defaults.yaml").read_text())
    text = (REPO / "_pillar/mailcluster_dkim.py").read_text()
    assert f'DEFAULT_SELECTOR = "{defaults["dkim"]["selector"]}"' in text
    conf = yaml.safe_load((REPO / "reactor/master.d/dkim.conf").read_text())
    assert conf["pillar_dirs"] == ["/srv/mailcluster/_pillar"]
    assert list(conf["ext_pillar"][0]) == ["mailcluster_dkim"]


def test_disabled_renders_the_clean_and_no_milter(tmp_path):
    high, templates = run_node(
        tmp_path,
        "mx1",
        [["state.show_highstate"], ["templates"]],
        pillar_copy(tmp_path, "rspamd: {enabled: false}\n"),
    )
    ids = {k for k, v in high.items() if v["__sls__"].startswith("rspamd")}
    assert "rspamd-clean-rspamd-service-dead" in ids
    assert not [i for i in ids if not i.startswith("rspamd-clean-")], ids
    main_cf = templates["/etc/postfix/main.cf"]["text"]
    assert "smtpd_milters" not in main_cf and "virtual_transport" in main_cf
