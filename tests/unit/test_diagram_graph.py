"""The cluster's picture (_runners/mailcluster_diagram_graph.py, docs/diagram.md): the pure
builder fed with models recorded from the live lab by ``lab/lab diagram`` (healthy, and with
mx1 killed and failed over: tests/fixtures/diagram/README.md), rendered by the real ``dot``
and read back from the SVG. Variants (a broken replica, a silent DNS server, an IP nobody
holds, DRBD) are the recorded model with one fact changed."""

import copy
import json

import pytest
from mc_diagram import PNG_MAGIC, Drawing
from mc_unit_helpers import FIXTURES, load_loader_module

graph_module = load_loader_module("runners", "mailcluster_diagram_graph")

MX1_SVC, MX2_SVC = "10.88.0.111", "10.88.0.112"


def recorded(stage):
    return json.loads((FIXTURES / "diagram" / f"{stage}.json").read_text())


def drawn(model):
    return Drawing(graph_module.build(model).pipe(format="svg"))


@pytest.fixture
def healthy():
    return recorded("healthy")


@pytest.fixture
def failed():
    return recorded("failed-over-mx1")


def test_healthy_every_node_ip_answer_and_replication(healthy):
    d = drawn(healthy)
    assert "healthy" in d.classes("graph0")
    assert "lab: healthy" in d.text("graph0")
    for name, node in healthy["nodes"].items():
        assert "down" not in d.classes(f"node-{name}")
        assert node["ip"] in d.text(f"node-{name}")
    assert d.holders(MX1_SVC) == {"mx1"} and d.holders(MX2_SVC) == {"mx2"}
    assert "takeover" not in d.classes(f"ip-{MX1_SVC}")
    assert d.answers("mail.example.test") == {MX1_SVC, MX2_SVC}
    assert "ns1, ns2" in d.text(f"answer-mail.example.test-{MX1_SVC}")
    assert "IO Yes, SQL Yes" in d.text("repl-db-ns2")
    assert "broken" not in d.classes("repl-db-ns2")
    assert "broken" not in d.classes("repl-dns-ns2")
    assert "shared_path" in d.text("store")
    # the data centres are boxes of their own, with their nodes
    clusters = [t for gid, (cls, t) in d.items.items() if "cluster" in cls]
    assert any(t.startswith("dc1") and "mx1" in t and "ns1" in t for t in clusters)
    assert any(t.startswith("dc2") and "mx2" in t and "ns2" in t for t in clusters)


def test_failed_over_drawn_differently(healthy, failed):
    d = drawn(failed)
    assert "degraded" in d.classes("graph0")
    assert "mx1 down" in d.text("graph0")
    assert "down" in d.classes("node-mx1") and "DOWN" in d.text("node-mx1")
    assert "down" not in d.classes("node-mx2")
    assert d.holders(MX1_SVC) == {"mx2"}
    assert "takeover" in d.classes(f"hold-{MX1_SVC}-mx2")
    assert "takeover" in d.classes(f"ip-{MX1_SVC}") and "TAKEN OVER by mx2" in d.text(
        f"ip-{MX1_SVC}"
    )
    assert d.holders(MX2_SVC) == {"mx2"}
    for name in ("mail.example.test", "mail.sales.test", "mx1.example.test"):
        assert d.answers(name) == {MX2_SVC}, name
    assert "broken" in d.classes("store")
    assert graph_module.build(failed).source != graph_module.build(healthy).source


def test_same_model_same_dot(healthy):
    assert graph_module.build(healthy).source == graph_module.build(copy.deepcopy(healthy)).source


def test_png_renders(failed):
    assert graph_module.build(failed).pipe(format="png").startswith(PNG_MAGIC)


def test_broken_replica_and_lagging_secondary(healthy):
    model = copy.deepcopy(healthy)
    model["db"]["replicas"]["ns2"]["Slave_IO_Running"] = "No"
    model["db"]["replicas"]["ns2"]["Last_IO_Error"] = "error reconnecting to master"
    zone = "example.test"
    model["dns"]["servers"]["ns2"]["serials"][zone] -= 1
    d = drawn(model)
    assert "broken" in d.classes("repl-db-ns2")
    assert "IO No" in d.text("repl-db-ns2") and "reconnecting" in d.text("repl-db-ns2")
    assert "broken" in d.classes("repl-dns-ns2") and "!=" in d.text("repl-dns-ns2")


def test_silent_dns_server_and_unheld_ip(healthy):
    model = copy.deepcopy(healthy)
    model["dns"]["servers"]["ns2"] = {"answers": {}, "serials": {}, "mx": {}, "answered": False}
    model["service_ips"][MX2_SVC]["holders"] = []
    d = drawn(model)
    assert "no answer from ns2" in " ".join(t for _, t in d.items.values())
    assert "ns2" not in d.text(f"answer-mail.example.test-{MX1_SVC}")
    assert "broken" in d.classes("repl-dns-ns2")
    assert "unheld" in d.classes(f"ip-{MX2_SVC}") and d.holders(MX2_SVC) == set()
    assert "degraded" in d.classes("graph0")


def test_drbd_store_states(healthy):
    model = copy.deepcopy(healthy)
    res = {"role": "Primary", "volumes": [{"volume": 0, "disk": "UpToDate"}], "peers": []}
    model["storage"].update(backend="drbd_ocfs2", resources={"mx1": {"r0": res}, "mx2": None})
    d = drawn(model)
    assert "DRBD" in d.text("store") and "mx1 r0: Primary UpToDate" in d.text("store")
    assert "mx2: no answer" in d.text("store") and "broken" in d.classes("store")
    model["storage"]["resources"]["mx2"] = {"r0": res}
    assert "broken" not in drawn(model).classes("store")
