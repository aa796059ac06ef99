"""kitchen.yml read as Test Kitchen reads it, and the sandbox salt_solo 0.7.2 would write for it.

No Ruby here: the golden files (golden/dns-primary/) were written by hand from kitchen-salt
0.7.2's templates (minion.erb, spm.erb) and salt_solo.rb's command building, for this
project's options; the reproduction (salt_solo.py) must write exactly them. No root, no node:
seconds.
"""

from __future__ import annotations

import copy
import filecmp
from pathlib import Path

import kitchen_config as kc
import kitchen_run
import pytest
import salt_solo
import yaml

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "dns-primary"


@pytest.fixture(scope="module")
def kitchen():
    return kc.load(REPO)


@pytest.fixture(scope="module")
def dns_sandbox(kitchen, tmp_path_factory):
    path = tmp_path_factory.mktemp("sandbox")
    cfg = kitchen_run.prepare(kc.instance(kitchen, "dns-primary"), REPO, path)
    return cfg, path


def test_minion_config_is_minion_erb(dns_sandbox):
    _, path = dns_sandbox
    assert (path / "etc/salt/minion").read_text() == (GOLDEN / "minion").read_text()
    assert (path / "etc/salt/spm").read_text() == (GOLDEN / "spm").read_text()
    assert (path / "etc/salt/minion.d/99-minion.conf").read_text() == (
        GOLDEN / "99-minion.conf"
    ).read_text()
    # no grains, no dropin files: salt_solo writes neither
    assert sorted(p.name for p in (path / "etc/salt").iterdir()) == ["minion", "minion.d", "spm"]


def test_commands_are_salt_solo_rb(dns_sandbox):
    cfg, _ = dns_sandbox
    written = {
        "init": salt_solo.init_command(cfg),
        "prepare": salt_solo.prepare_command(cfg),
        "run": salt_solo.salt_command(cfg),
    }
    golden = dict(line.split(": ", 1) for line in (GOLDEN / "commands").read_text().splitlines())
    assert written == golden


def test_top_file_is_the_projects(dns_sandbox):
    _, path = dns_sandbox
    assert (path / "srv/salt/top.sls").read_text() == (REPO / "salt/top.sls").read_text()


def test_pillar_tree(dns_sandbox):
    _, path = dns_sandbox
    lines = [x for x in (GOLDEN / "pillar").read_text().splitlines() if not x.startswith("#")]
    expected = dict(line.split() for line in lines)
    pillar = path / "srv/pillar"
    assert sorted(p.name for p in pillar.iterdir()) == sorted(expected)
    for name, source in expected.items():
        assert filecmp.cmp(pillar / name, REPO / source, shallow=False), name
    # the lab's site data (./pillar) is not copied whole: no topology of the lab's five nodes
    assert not (pillar / "ca.sls").exists()


def test_state_tree_carries_the_custom_modules(dns_sandbox):
    _, path = dns_sandbox
    tree = path / "srv/salt"
    for folder in ("_modules", "_states", "_grains", "_beacons", "_runners"):
        names = sorted(p.name for p in (REPO / folder).glob("*.py"))
        assert names and sorted(p.name for p in (tree / folder).glob("*.py")) == names, folder
    assert not list(tree.rglob("__pycache__")), "salt_copy_filter lets __pycache__ through"
    # the DKIM ext_pillar, which a masterless minion runs itself (pillar_dirs)
    assert (tree / "_pillar/mailcluster_dkim.py").is_file()


def test_every_suite_renders(kitchen, tmp_path):
    names = [i.name for i in kc.instances(kitchen)]
    assert names == [f"{s['name']}-debian-12" for s in kitchen["suites"]]
    for instance in kc.instances(kitchen):
        kitchen_run.prepare(instance, REPO, tmp_path / instance.name)


def test_image_pins_are_the_projects(kitchen):
    """The docker image's Salt venv (kitchen.yml, provision_command) pins what
    requirements.txt pins: the instance runs the same Salt and modules as the lab's nodes."""
    pins = dict(
        line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    (platform,) = kitchen["platforms"]
    words = " ".join(platform["driver"]["provision_command"]).split()
    image = dict(w.split("==") for w in words if "==" in w)
    assert image and all(pins.get(name) == version for name, version in image.items()), image


def test_hashes_written_as_psych_writes_them():
    # Psych's visit_String: "*" and "/x" open with a non-word character (double quotes); "1"
    # and "yes" would read back as other types (single quotes); sequences sit at their key's
    # indentation, a mapping item's first key on the dash's line
    top = {"base": {"*": ["common.pillar", "dns.primary"]}, "v": ["1", "yes", "/x", 2]}
    items = {"a": [{"b": "c", "d": True}]}
    assert salt_solo.yaml_dump(top) == (
        '---\nbase:\n  "*":\n  - common.pillar\n  - dns.primary\n'
        "v:\n- '1'\n- 'yes'\n- \"/x\"\n- 2\n"
    )
    assert salt_solo.yaml_dump(items) == "---\na:\n- b: c\n  d: true\n"


def test_merge_rules():
    data = {
        "provisioner": {"name": "salt_solo", "a": {"x": 1, "y": 2}, "list": [1, 2]},
        "verifier": "shell",
        "platforms": [{"name": "debian-12.1", "provisioner": {"a": {"y": 3}}}],
        "suites": [
            {"name": "one_two", "provisioner": {"a": {"z": 4}, "list": [9]}},
            {"name": "other", "excludes": ["debian-12.1"]},
        ],
    }
    (only,) = kc.instances(data)
    assert only.name == "one-two-debian-121"
    assert only.provisioner == {"name": "salt_solo", "a": {"x": 1, "y": 3, "z": 4}, "list": [9]}
    assert only.verifier == {"name": "shell"}


def _suite(kitchen, suite: str, **provisioner) -> kc.Instance:
    data = copy.deepcopy(kitchen)
    entry = next(s for s in data["suites"] if s["name"] == suite)
    entry["provisioner"].update(provisioner)
    return kc.instance(data, suite)


def test_misspelled_option_fails_naming_it(kitchen, tmp_path):
    instance = _suite(kitchen, "dns-primary", salt_verison="3008.4")
    with pytest.raises(kc.KitchenConfigError) as err:
        kitchen_run.prepare(instance, REPO, tmp_path)
    assert str(err.value) == (
        "kitchen.yml: suite 'dns-primary' (dns-primary-debian-12) provisioner: unknown "
        "salt_solo option 'salt_verison' (did you mean 'salt_version'?)"
    )


def test_documented_but_unread_option_fails(kitchen, tmp_path):
    instance = _suite(kitchen, "mail", salt_minion_config_include_files=["x.conf"])
    with pytest.raises(kc.KitchenConfigError, match="'salt_minion_config_dropin_files'"):
        kitchen_run.prepare(instance, REPO, tmp_path)


@pytest.mark.parametrize(
    "option, message",
    [
        ({"salt_version": 3008.4}, "must be a string"),
        ({"salt_version": "3008"}, "a bare major version"),
        ({"require_chef": True}, "require_chef must be false"),
        ({"local_salt_root": None}, "state_top_from_file needs local_salt_root"),
    ],
)
def test_traps_fail(kitchen, tmp_path, option, message):
    with pytest.raises(kc.KitchenConfigError, match=message):
        kitchen_run.prepare(_suite(kitchen, "web", **option), REPO, tmp_path)


def test_suite_naming_a_missing_sls_fails(kitchen, tmp_path):
    instance = _suite(
        kitchen,
        "dns-primary",
        state_top_from_file=False,
        state_top={"base": {"*": ["common.pillar", "dns.primry"]}},
    )
    with pytest.raises(kc.KitchenConfigError) as err:
        kitchen_run.prepare(instance, REPO, tmp_path)
    assert "suite 'dns-primary'" in str(err.value)
    assert "names SLS 'dns.primry'" in str(err.value)


def test_a_file_before_its_directory_fails(kitchen, tmp_path):
    # kitchen-salt copies a file only into a directory that exists (FileUtils.copy)
    order = [x for x in kitchen["provisioner"]["pillars_from_directories"] if isinstance(x, dict)]
    instance = _suite(kitchen, "dns-primary", pillars_from_directories=order)
    with pytest.raises(kc.KitchenConfigError, match="no such directory yet"):
        kitchen_run.prepare(instance, REPO, tmp_path)


def test_erb_and_two_files_refused(tmp_path):
    (tmp_path / "kitchen.yml").write_text("platforms: <%= 1 %>\n")
    with pytest.raises(kc.KitchenConfigError, match="ERB"):
        kc.load(tmp_path)
    (tmp_path / ".kitchen.yml").write_text(yaml.safe_dump({"platforms": [], "suites": []}))
    with pytest.raises(kc.KitchenConfigError, match="exactly one"):
        kc.load(tmp_path)
