"""The host checks of tests/checks/ (the ones kitchen.yml's verifier runs) against every lab
node, by the roles the lab's pillar gives it: services running and enabled, ports, packages,
file modes and owners, through testinfra's nspawn backend (lab/mclab/testinfra_nspawn.py)."""

from __future__ import annotations

import pytest
import yaml
from checks import nspawn_host, verify
from mclab import util

pytestmark = pytest.mark.lab

TOPOLOGY = yaml.safe_load((util.REPO / "pillar/topology.sls").read_text())["mailcluster"]["nodes"]


@pytest.mark.parametrize("node", sorted(TOPOLOGY))
def test_node_passes_its_roles_checks(lab, node):
    verify(nspawn_host(node, lab.lab.name), TOPOLOGY[node]["roles"])
