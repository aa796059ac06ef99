"""The kitchen instance here: one fresh Debian 12 nspawn node, as Test Kitchen's driver makes one.

The lab's own machinery (mclab.lab.Lab: the cached base image, overlay, cgroups, network
namespace, boot and teardown) with one node and no master, as a lab instance of its own
(``mckitchen``, 10.87.0.0/24: the lab is 10.88.0.0/24), so it never touches the shared lab.
The node gets no salt-minion daemon (salt_solo runs salt-call only); Salt is the venv the lab
binds into every node (salt_install: none).
"""

from __future__ import annotations

import subprocess
import time

from mclab import image, util
from mclab.lab import Lab, Node

LAB = "mckitchen"
SUBNET = "10.87.0"
NODE = "kitchen"
OCTET = 10


class KitchenNode(Lab):
    def __init__(self):
        super().__init__(LAB, SUBNET)

    def _node(self, name: str) -> Node:
        return Node(name=name, ip=f"{self.subnet}.{OCTET}", root=self.dir / "nodes" / name / "root",
                    lab=self.name)  # fmt: skip

    @property
    def hostspec(self) -> str:
        """The testinfra host of this node (mclab.testinfra_nspawn)."""
        return f"nspawn://{NODE}?namespace={self.name}"

    def create(self) -> float:
        """Boot the fresh node (Test Kitchen's ``create``); returns the seconds it took."""
        util.require_root()
        started = time.monotonic()
        if self.load_state() is not None:
            self.down()
        base = image.ensure_image(util.REPO / "lab/packages.txt")
        node = self._node(NODE)
        with self.lock():
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.save_state({"nodes": [NODE], "subnet": self.subnet, "image": str(base)})
                self._network_up()
                self._prepare_node(node, base, [NODE])
                # an instance of Test Kitchen's has no minion daemon and no master to reach
                (
                    node.root / "etc/systemd/system/multi-user.target.wants/salt-minion.service"
                ).unlink()
                (node.root / "etc/salt/minion.d/lab.conf").unlink()
                self._boot(node)
                self._wait_booted(node)
            except BaseException:
                self._teardown([NODE])
                raise
        return time.monotonic() - started

    def run_shell(self, script: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        """A command as Test Kitchen's transport runs one: ``sh -c`` on the instance."""
        return self.run(NODE, ["sh", "-c", script], capture=True, timeout=timeout)

    def upload(self, sandbox, remote: str) -> None:
        """Copy the sandbox's contents to ``remote`` on the node (Test Kitchen's upload)."""
        args = self.exec_args(self.node(NODE), ["tar", "-C", remote, "-xf", "-"])
        tar = subprocess.Popen(["tar", "-C", str(sandbox), "-cf", "-", "."], stdout=subprocess.PIPE)
        proc = subprocess.run(args, stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.wait()
        if tar.returncode or proc.returncode:
            raise util.LabError(f"upload of {sandbox} to {remote} failed: {proc.stderr}")
