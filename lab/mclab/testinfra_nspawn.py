"""A testinfra backend for the lab's nspawn nodes: ``testinfra.get_host("nspawn://mx1")``.

testinfra (pytest-testinfra 10) has no backend that enters a systemd-nspawn node started
without a host systemd (no machined: ``machinectl``/``systemd-run -M`` cannot find it). This
one runs each command the way the lab does (``Lab.exec_args``: nsenter into every namespace
of the node's PID 1, found through the node's cgroup), so host checks see the node exactly as
``lab/lab run NODE -- CMD`` does. ``nspawn://NODE?namespace=LAB`` picks another lab instance
than $MC_LAB (the kitchen node's: ``mckitchen``).

Importing this module registers the backend (testinfra looks its BACKENDS up at call time).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import testinfra.backend
from testinfra.backend import base

from .lab import Lab, Node


class NspawnBackend(base.BaseBackend):
    NAME = "nspawn"

    def __init__(self, name: str, *args: Any, namespace: str | None = None, **kwargs: Any):
        self.lab = Lab(namespace)
        # only the cgroup matters for entering it: no address or root needed
        self.node = Node(name=name, ip="", root=Path("/"), lab=self.lab.name)
        super().__init__(name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        argv = self.lab.exec_args(self.node, ["/bin/sh", "-c", cmd])
        out = self.run_local(shlex.join(argv))
        out.command = self.encode(cmd)
        return out


testinfra.backend.BACKENDS.setdefault("nspawn", f"{__name__}.NspawnBackend")
