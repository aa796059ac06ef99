"""``kitchen converge`` and ``kitchen verify`` of one instance, on the nspawn kitchen node.

The steps Test Kitchen takes with salt_solo (provisioner base ``call``): build the sandbox on
the workstation, run the install command, the init command, upload the sandbox to root_path,
the prepare command, the run command; then the verifier. The shell verifier runs its command
on the workstation with KITCHEN_INSTANCE, KITCHEN_PLATFORM, KITCHEN_SUITE (and the driver's
state, which this driver replaces with MC_KITCHEN_HOST, the node's testinfra host).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import salt_solo
import salt_solo_options
from kitchen_config import Instance, KitchenConfigError
from kitchen_node import KitchenNode
from mclab import util

SUMMARY = re.compile(r"^Succeeded: (\d+)(?: \(changed=(\d+)\))?\s*\nFailed:\s+(\d+)", re.M)


@dataclass
class Converge:
    rc: int
    output: str
    succeeded: int
    changed: int
    failed: int


def prepare(instance: Instance, project: Path, sandbox: Path) -> dict:
    """The instance's checked salt_solo settings, its sandbox written under ``sandbox``."""
    where = f"kitchen.yml: suite '{instance.suite}' ({instance.name}) provisioner"
    cfg = salt_solo_options.settings(where, instance.provisioner)
    cwd = os.getcwd()
    os.chdir(project)  # kitchen-salt resolves the paths in kitchen.yml from the kitchen root
    try:
        salt_solo.Sandbox(cfg, project, sandbox, where).write()
    finally:
        os.chdir(cwd)
    return cfg


def install_check(node: KitchenNode, cfg: dict) -> str:
    """salt_install none: kitchen-salt's install step only compares the installed salt-call's
    version with salt_version (exact, YEAR.MONTH, or latest) and fails otherwise."""
    call = cfg.get("salt_call_command") or "salt-call"
    out = node.run_shell(f"{call} --version").stdout.split()
    installed = out[1] if len(out) > 1 else ""
    wanted = cfg["salt_version"]
    if wanted not in ("latest", installed, ".".join(installed.split(".")[:2])):
        raise KitchenConfigError(f"salt_version {wanted}: the instance has salt {installed!r}")
    return installed


def converge(node: KitchenNode, cfg: dict, sandbox: Path) -> Converge:
    install_check(node, cfg)
    _must(node, salt_solo.init_command(cfg))
    node.upload(sandbox, cfg["root_path"])
    _must(node, salt_solo.prepare_command(cfg))
    return run(node, cfg)


def run(node: KitchenNode, cfg: dict) -> Converge:
    proc = node.run_shell(salt_solo.salt_command(cfg), timeout=1800)
    output = proc.stdout + proc.stderr
    found = SUMMARY.findall(output)
    ok, changed, failed = (int(x or 0) for x in found[-1]) if found else (0, 0, 0)
    return Converge(proc.returncode, output, ok, changed, failed)


def verify(instance: Instance, node: KitchenNode, project: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        KITCHEN_INSTANCE=instance.name,
        KITCHEN_PLATFORM=instance.platform,
        KITCHEN_SUITE=instance.suite,
        MC_KITCHEN_HOST=node.hostspec,
        PATH=f"{util.VENV / 'bin'}:{os.environ['PATH']}",
    )
    command = instance.verifier["command"]
    return subprocess.run(
        command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def _must(node: KitchenNode, script: str) -> None:
    proc = node.run_shell(script)
    if proc.returncode:
        raise util.LabError(f"kitchen step failed (rc={proc.returncode}): {script}\n{proc.stderr}")
