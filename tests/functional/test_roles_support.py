"""Helpers for the role tests: a masterless salt Caller per lab node, on the repo's state tree.

No daemons: each node is a `salt.client.Caller` with `file_client: local`, the repo's
`salt/` + repo root as file_roots, `pillar/` (or a copy with extra files) as pillar_roots, and
`_modules`/`_states` loaded straight from the repo.
"""

import json
import pathlib
import shutil

import salt.client
import salt.config

REPO = pathlib.Path(__file__).resolve().parents[2]
NODES = ["salt", "mx1", "mx2", "ns1", "ns2"]
ROLES = ["common", "db", "dns", "mail", "ha", "web", "graphs"]


def make_caller(tmp: pathlib.Path, node: str, pillar_root: pathlib.Path | None = None):
    """A masterless Caller for ``node``; a storage stub stands in for missing backends."""
    tmp.mkdir(parents=True, exist_ok=True)
    stub = tmp / "stub"
    for backend in ("shared_path", "drbd_ocfs2"):
        sls = stub / "storage" / backend / "init.sls"
        sls.parent.mkdir(parents=True, exist_ok=True)
        sls.write_text(f"storage-{backend}-stub-test-nop:\n  test.nop: []\n")
    config = {
        "id": node,
        "file_client": "local",
        "root_dir": str(tmp),
        "pki_dir": str(tmp / "pki"),
        "cachedir": str(tmp / "cache"),
        "sock_dir": str(tmp / "sock"),
        "log_file": str(tmp / "minion.log"),
        "log_level_logfile": "warning",
        "file_roots": {"base": [str(REPO / "salt"), str(REPO), str(stub)]},
        "pillar_roots": {"base": [str(pillar_root or REPO / "pillar")]},
        "module_dirs": [str(REPO / "_modules")],
        "states_dirs": [str(REPO / "_states")],
        "grains": {"id": node},
    }
    cfg = tmp / "minion"
    cfg.write_text(json.dumps(config))
    opts = salt.config.minion_config(str(cfg))
    return salt.client.Caller(mopts=opts)


def pillar_copy(tmp: pathlib.Path, extra: str) -> pathlib.Path:
    """A copy of the lab pillar with ``extra`` as its optional ``local.sls``."""
    root = tmp / "pillar"
    shutil.copytree(REPO / "pillar", root)
    (root / "local.sls").write_text(extra)
    return root
