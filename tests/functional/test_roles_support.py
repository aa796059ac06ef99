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


def make_caller(tmp: pathlib.Path, node: str, pillar_root: pathlib.Path | None = None, grains=None):
    """A masterless Caller for ``node``; a storage stub stands in for missing backends.
    ``grains`` are set over the host's (e.g. ``init: systemd``, which this host's PID 1 is
    not)."""
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
        "pillar_roots": {"base": [str(pillar_root or pillar_copy(tmp, None))]},
        "module_dirs": [str(REPO / "_modules")],
        "states_dirs": [str(REPO / "_states")],
        "grains": {**(grains or {}), "id": node},
    }
    cfg = tmp / "minion"
    cfg.write_text(json.dumps(config))
    opts = salt.config.minion_config(str(cfg))
    return salt.client.Caller(mopts=opts)


# optional pillar files a developer or a lab test may have left in the work tree
UNTRACKED_PILLAR = ("local.sls", "roles_test.sls", "scale_test.sls")


def pillar_copy(tmp: pathlib.Path, extra: str | None) -> pathlib.Path:
    """A copy of the lab pillar (without local overrides) with ``extra`` as ``local.sls``."""
    root = tmp / "pillar"
    if not root.exists():
        shutil.copytree(REPO / "pillar", root, ignore=shutil.ignore_patterns(*UNTRACKED_PILLAR))
    if extra is not None:
        (root / "local.sls").write_text(extra)
    return root


def _render_templates(caller, high):
    """Every `file.managed` Jinja template of a highstate, rendered with its context."""
    out = {}
    if not isinstance(high, dict):
        return out
    for state_id, body in high.items():
        args = {}
        for item in body.get("file", []):
            if isinstance(item, dict):
                args.update(item)
        source = str(args.get("source", ""))
        if args.get("template") != "jinja" or not source.startswith("salt://"):
            continue
        src = REPO / "salt" / source[len("salt://") :]
        out[args["name"]] = {
            "id": state_id,
            "text": caller.cmd(
                "file.apply_template_on_contents",
                src.read_text(),
                template="jinja",
                context=args.get("context", {}),
                defaults=None,
                saltenv="base",
            ),
        }
    return out


def run_node(
    tmp: pathlib.Path,
    node: str,
    calls: list,
    pillar_root=None,
    env: dict | None = None,
    grains: dict | None = None,
) -> list:
    """Run salt ``calls`` ([fun, *args] or [fun, args, kwargs]) for ``node`` in a fresh
    process (salt's loaders keep per-process state, so nodes must not share one) and return
    their results; the pseudo call ``["templates"]`` renders the highstate's templates. The
    calls go through a file (whole pillars are too big for argv); ``env`` adds to the
    process's environment, ``grains`` to the node's."""
    import os
    import subprocess
    import sys
    import uuid

    spec = {
        "tmp": str(tmp),
        "node": node,
        "calls": calls,
        "pillar_root": str(pillar_root or ""),
        "grains": grains or {},
    }
    pathlib.Path(tmp).mkdir(parents=True, exist_ok=True)
    spec_file = pathlib.Path(tmp) / f"spec-{node}-{uuid.uuid4().hex[:8]}.json"
    spec_file.write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, __file__, str(spec_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"salt calls on {node} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def merged(base: dict, *texts: str) -> dict:
    """``base`` with each YAML text merged over it (lists replaced, as pillar merges them)."""
    import copy

    import salt.utils.dictupdate
    import yaml

    pillar = copy.deepcopy(base)
    for text in texts:
        pillar = salt.utils.dictupdate.merge(pillar, yaml.safe_load(text), merge_lists=False)
    return pillar


def validate_cases(tmp: pathlib.Path, base: dict, cases: dict) -> dict:
    """``{name: errors}``: each case's YAML merged over ``base`` and checked by
    ``mailcluster.validate``, all in one minion process."""
    names = sorted(cases)
    calls = [["mailcluster.validate", merged(base, cases[n])] for n in names]
    return dict(zip(names, run_node(tmp, "mx1", calls), strict=True))


def _worker(spec: dict) -> list:
    pillar_root = pathlib.Path(spec["pillar_root"]) if spec["pillar_root"] else None
    caller = make_caller(pathlib.Path(spec["tmp"]), spec["node"], pillar_root, spec.get("grains"))
    results, high = [], None
    for call in spec["calls"]:
        if call[0] == "templates":
            if high is None:
                high = caller.cmd("state.show_highstate")
            results.append(_render_templates(caller, high))
            continue
        if len(call) == 3 and isinstance(call[1], list) and isinstance(call[2], dict):
            fun, args, kwargs = call
        else:
            fun, args, kwargs = call[0], call[1:], {}
        res = caller.cmd(fun, *args, **kwargs)
        if fun == "state.show_highstate":
            high = res
        results.append(res)
    return results


if __name__ == "__main__":
    import sys

    print(json.dumps(_worker(json.loads(pathlib.Path(sys.argv[1]).read_text())), default=str))
