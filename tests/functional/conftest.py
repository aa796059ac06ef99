"""
Functional tests: our modules and states called through Salt's real loaders
(pytest-salt-factories ``Loaders``), with ``cmd`` replaced by a replay of real recorded
outputs (mc_fake_cmd.py). No daemon runs, no real command runs.
"""

import os
import stat

import pytest
import salt.config
from mc_fake_cmd import REPO, SCENARIO
from saltfactories.utils.functional import Loaders

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_TREE = os.path.join(HERE, "fake_tree")
TOOLS = ("drbdadm", "drbdsetup", "o2cb", "mounted.ocfs2", "cl_status")


@pytest.fixture(scope="session")
def fake_bin(tmp_path_factory):
    """Stand-ins so that __virtual__ finds the tools on any machine; never executed."""
    path = tmp_path_factory.mktemp("bin")
    for tool in TOOLS:
        exe = path / tool
        exe.write_text("#!/bin/sh\necho 'functional tests must not run real tools' >&2\nexit 99\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(scope="session")
def minion_opts(tmp_path_factory, fake_bin):
    root = tmp_path_factory.mktemp("minion")
    opts = salt.config.minion_config(None)
    opts.update(
        {
            "id": "mx1",
            "root_dir": str(root),
            "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"),
            "sock_dir": str(root / "sock"),
            "extension_modules": str(root / "extmods"),
            "log_file": str(root / "minion.log"),
            "file_client": "local",
            # the repo's tree too: mailcluster.validate reads the roles' schema files from it
            "file_roots": {"base": [str(root / "states"), str(REPO / "salt")]},
            "pillar_roots": {"base": [str(root / "pillar")]},
            # later entries are searched first: the fake cmd wins over core cmdmod
            "module_dirs": [str(REPO), FAKE_TREE],
            "grains_cache": False,
            "disable_grains": ["mailcluster_ha"],
        }
    )
    for sub in ("cache", "pki", "sock", "extmods", "states", "pillar"):
        (root / sub).mkdir(exist_ok=True)
    return opts


@pytest.fixture(scope="session")
def loaders(minion_opts):
    return Loaders(minion_opts)


@pytest.fixture
def fake_cmd(loaders, fake_bin, monkeypatch):
    # only while our tests run: other tests in the session must not see the stand-ins
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    SCENARIO.reset()
    yield SCENARIO
    loaders.reset_state()
    SCENARIO.reset()


@pytest.fixture
def modules(loaders, fake_cmd):
    return loaders.modules


@pytest.fixture
def states(loaders, fake_cmd):
    return loaders.states


@pytest.fixture(params=[True, False], ids=["test=True", "test=False"])
def testmode(request):
    return request.param


@pytest.fixture(scope="session")
def lab_pillar_items(tmp_path_factory):
    """mx1's whole lab pillar, once per session (Salt 3008 masks pillar.items unless asked)."""
    from test_roles_support import run_node

    tmp = tmp_path_factory.mktemp("labpillar")
    return run_node(tmp, "mx1", [["pillar.items", [], {"unmask": True}]])[0]


@pytest.fixture(scope="module")
def bad_results(request, tmp_path_factory, lab_pillar_items):
    """The errors of each bad pillar in the test module's ``BAD`` ({case: (pillar text,
    expected key)}), each over the lab pillar, all validated in one minion process."""
    from test_roles_support import validate_cases

    cases = {name: text for name, (text, _m) in request.module.BAD.items()}
    return validate_cases(tmp_path_factory.mktemp("bad"), lab_pillar_items, cases)
