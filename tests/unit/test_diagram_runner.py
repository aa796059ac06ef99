"""The diagram's runner (_runners/mailcluster_diagram.py) as the master loads it: through
Salt's runner loader, next to the failover runner it reuses and the builder it hands the
model to (the collecting itself runs in the lab: tests/lab/test_diagram.py)."""

import inspect

import pytest
from mc_unit_helpers import runner_loader


@pytest.fixture
def runners(tmp_path):
    return runner_loader(tmp_path)


def test_loads_with_what_it_reuses(runners):
    for name in ("model", "source", "render"):
        assert f"mailcluster_diagram.{name}" in runners, name
    assert "mailcluster_diagram_graph.build" in runners
    assert "mailcluster_failover.status" in runners
    render = runners["mailcluster_diagram.render"].func
    assert list(inspect.signature(render).parameters) == ["out", "formats"]
