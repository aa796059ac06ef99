"""``kitchen test`` of kitchen.yml's suites, without Ruby: salt_solo's sandbox and commands
(salt_solo.py) on a fresh Debian 12 nspawn node (kitchen_node.py), then the suite's verifier
command, unchanged, against that node (testinfra's nspawn backend).

The default run converges DEFAULT_SUITE; MC_KITCHEN_ALL=1 adds every other suite (README,
"Kitchen and host checks": how long).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import kitchen_config as kc
import kitchen_run
import pytest
from checks.kitchen_suites import suite_checks
from kitchen_node import KitchenNode

pytestmark = pytest.mark.kitchen

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SUITE = "mail"
# what a suite's main service is: stopped, the verifier must fail, naming its check
MAIN_SERVICE = {
    "common": ("nftables", "common.check_firewall"),
    "dns-primary": ("named", "dns_primary.check_bind"),
    "db-primary": ("mariadb", "db_primary.check_mariadb"),
    "web": ("lighttpd", "web.check_lighttpd"),
    "mail": ("postfix", "mail.check_postfix"),
    "graphs": ("mailgraph", "graphs.check_mailgraph"),
}


def _suites() -> list[str]:
    """The suites this run converges: DEFAULT_SUITE, or all with MC_KITCHEN_ALL=1 (the others
    are not collected at all then, rather than reported as skipped)."""
    names = [s["name"] for s in kc.load(REPO)["suites"]]
    return names if os.environ.get("MC_KITCHEN_ALL") == "1" else [DEFAULT_SUITE]


@pytest.fixture
def node():
    if os.geteuid() != 0:
        pytest.skip("the kitchen node needs root (nspawn, like the lab tier)")
    instance = KitchenNode()
    yield instance
    if not os.environ.get("MC_KEEP_KITCHEN"):
        instance.down()


@pytest.mark.parametrize("suite", _suites())
def test_kitchen_suite(suite, node, tmp_path):
    instance = kc.instance(kc.load(REPO), suite)
    cfg = kitchen_run.prepare(instance, REPO, tmp_path / "sandbox")
    node.create()

    first = kitchen_run.converge(node, cfg, tmp_path / "sandbox")
    assert first.rc == 0 and first.failed == 0, f"converge of {suite} failed:\n{first.output}"
    assert first.changed > 0, f"a fresh node and nothing changed?\n{first.output}"

    second = kitchen_run.run(node, cfg)
    assert second.rc == 0 and second.succeeded == first.succeeded, second.output
    assert second.changed == 0, f"second converge of {suite} changed things:\n{second.output}"

    verified = kitchen_run.verify(instance, node, REPO)
    assert verified.returncode == 0, f"verifier of {suite}:\n{verified.stdout}{verified.stderr}"
    passed = re.search(r"(\d+) passed", verified.stdout)
    assert passed and int(passed.group(1)) == len(suite_checks(suite)), verified.stdout
    assert "skipped" not in verified.stdout and "failed" not in verified.stdout, verified.stdout

    # the checks can fail: the suite's main service stopped, the verifier says which check
    service, check = MAIN_SERVICE[suite]
    node.run_shell(f"systemctl stop {service}")
    broken = kitchen_run.verify(instance, node, REPO)
    assert broken.returncode != 0 and check in broken.stdout, broken.stdout
