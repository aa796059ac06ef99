"""`lab/lab diagram`: the picture of the lab cluster, drawn from its pillar and live state.

The master collects and draws (`salt-run mailcluster_diagram.source`: the model and its DOT
text, docs/diagram.md); the host's Graphviz `dot` renders it, because the lab's master node
has no Graphviz of its own (its packages come from the base image). On a real master with the
`graphviz` package, `salt-run mailcluster_diagram.render` writes the same files there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from . import util

FORMATS = ("svg", "png")


def _source(lab) -> dict:
    proc = lab.salt(["mailcluster_diagram.source", "--out=json"], command="salt-run", capture=True)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = None
    if proc.returncode != 0 or not isinstance(data, dict) or "dot" not in data:
        raise util.LabError(
            f"salt-run mailcluster_diagram.source failed (rc={proc.returncode}): "
            f"{(proc.stdout + proc.stderr).strip()[-2000:]}"
        )
    return data


def draw(lab, out: Path, keep_source: bool = False) -> dict[str, Path]:
    """Write cluster.svg and cluster.png into ``out``; with ``keep_source`` also cluster.dot
    and cluster.json (the model, as tests/fixtures/diagram/ records it)."""
    dot = shutil.which("dot")
    if dot is None:
        raise util.LabError("dot not found on the host: run lab/host-setup (package graphviz)")
    data = _source(lab)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in FORMATS:
        paths[fmt] = out / f"cluster.{fmt}"
        cmd = [dot, f"-T{fmt}", "-o", str(paths[fmt])]
        proc = subprocess.run(cmd, input=data["dot"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise util.LabError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    if keep_source:
        paths["dot"] = out / "cluster.dot"
        paths["dot"].write_text(data["dot"])
        paths["json"] = out / "cluster.json"
        paths["json"].write_text(json.dumps(data["model"], indent=1, sort_keys=True) + "\n")
    return paths
