"""Fixtures of the lab tier: a running nspawn lab, booted once per session.

If a lab is already up (a developer's `lab/lab up`), the tests use it and leave it running;
otherwise the session boots the default topology and tears it down at the end. A lab with
qemu guests (the seed tier's, `lab/lab up --storage drbd`) is refused with that message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from mc_wait import wait_for
from mclab import util
from mclab.lab import DEFAULT_NODES, Lab

LAB_CLI = str(util.REPO / "lab" / "lab")


def lab_environment_problem() -> str | None:
    if os.geteuid() != 0:
        return "the lab tier needs root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (run lab/host-setup)"
    if not (util.VENV / "bin/salt-minion").exists():
        return f"no Salt venv at {util.VENV} (run lab/bootstrap-venv)"
    return None


class LabHandle:
    """What a lab test needs: run commands in nodes, salt on the master, node addresses."""

    def __init__(self, lab: Lab):
        self.lab = lab
        # (returns of the first highstate, returns of the second), when this session booted
        # the lab bare and converged it; None for a lab that was already up
        self.from_bare: tuple[dict, dict] | None = None

    def ip(self, node: str) -> str:
        return self.lab._node(node).ip

    @property
    def host_ip(self) -> str:
        return f"{self.lab.subnet}.1"

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        env = dict(os.environ, MC_LAB=self.lab.name, MC_LAB_SUBNET=self.lab.subnet)
        return subprocess.run(
            [LAB_CLI, *args], capture_output=True, text=True, timeout=timeout, env=env
        )

    def run(self, node: str, *cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.lab.run(node, list(cmd), capture=True, timeout=timeout)

    def salt(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return self.lab.salt(list(args), capture=True, timeout=timeout)

    def salt_json(self, *args: str, timeout: float = 900) -> dict:
        proc = self.salt(*args, "--out=json", "--static", timeout=timeout)
        try:
            return json.loads(proc.stdout or "{}")
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"salt {args} printed no JSON: {proc.stdout}{proc.stderr}"
            ) from exc

    def salt_run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return self.lab.salt(list(args), command="salt-run", capture=True, timeout=timeout)

    def answering(self, timeout: int | None = None) -> set[str]:
        timeout = timeout or self.lab.ping_timeout()
        data = self.salt_json("*", "test.ping", "-t", str(timeout), timeout=timeout + 60)
        return {k for k, v in data.items() if v is True}

    def ensure_running(self, node: str) -> None:
        """Bring a node back after a destructive test, and wait for its minion."""
        if not self.lab.is_running(self.lab.node(node)):
            self.lab.start(node)
        wait_for(lambda: node in self.answering(), 120, what=f"{node}'s minion to answer")


@pytest.fixture(scope="session")
def lab():
    problem = lab_environment_problem()
    if problem:
        pytest.skip(problem)
    instance = Lab()
    state = instance.load_state()
    if state is not None and state.get("guests"):
        # the lab tier's tests expect nspawn mail nodes on a shared_path store; run against
        # the seed's guests they failed by the dozen, each with a different symptom
        pytest.fail(
            f"lab '{instance.name}' is up with qemu guests ({', '.join(state['guests'])}, "
            "`lab/lab up --storage drbd`): the lab tier needs the default lab; run "
            "`lab/lab down` first, or the seed tier (MC_SEED=1)",
            pytrace=False,
        )
    started_here = state is None
    if started_here:
        instance.up(list(DEFAULT_NODES))
    handle = LabHandle(instance)
    if started_here:
        # a bare lab is converged once, before any test file, so that no file depends on
        # which one runs first (the tests of a converge from bare: test_ca_master,
        # test_roles_cluster's first apply)
        from _roles_helpers import apply_all, state_results

        handle.salt("*", "saltutil.sync_all", timeout=300)
        first, _seconds = apply_all(handle, timeout=2400)
        failed, _ = state_results(first)
        assert not failed, "the first highstate of the lab failed:\n" + "\n".join(failed)
        # the second apply right after it, kept for the tests of a converge from bare
        # (test_ca_master, test_roles_cluster): one pair of highstates per session instead
        # of one pair per file (each highstate of the five nodes costs about a minute)
        handle.from_bare = (first, apply_all(handle, timeout=1800)[0])
    yield handle
    if started_here and not os.environ.get("MC_KEEP_LAB"):
        instance.down()
