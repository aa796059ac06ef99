"""One lab instance: its nodes, their network, cgroups and lifecycle.

Layout on the host (NAME defaults to "mclab", MC_LAB overrides it):
- netns NAME-sw holds bridge br0; every node's veth and the host's uplink are ports of it;
- the host gets SUBNET.1 on interface NAME-host, so tests reach every node directly;
- each node is an overlay (the cached base image + its own upper dir) booted by systemd-nspawn
  with systemd as PID 1, from its own cgroup NAME/NODE in the name=systemd and unified
  hierarchies (the only way to run several nspawn nodes without a host systemd);
- STATE_ROOT/labs/NAME holds the node dirs, the shared mail directory and state.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import guest as guest_mod
from . import guest_image, image, nodefiles, util

# name -> last octet on the lab network, in boot order (the master first).
DEFAULT_NODES = {"salt": 2, "mx1": 11, "mx2": 12, "ns1": 21, "ns2": 22}
MASTER = "salt"
SHARED_STORE_NODES = ("mx1", "mx2")
# `up --storage`: how the mail pair shares its Maildirs. drbd: mx1 and mx2 are qemu guests with
# DRBD dual primary + OCFS2 (lab/mclab/guest.py), selected in pillar by lab/pillar-drbd.sls.
STORAGES = ("shared_path", "drbd")
LAB_PILLAR = util.REPO / "pillar/lab.sls"
CGROUP_HIERARCHIES = ("systemd", "unified")
NODE_CAPABILITIES = "CAP_IPC_LOCK,CAP_SYS_NICE,CAP_SYS_RESOURCE,CAP_NET_ADMIN,CAP_NET_RAW"


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    root: Path
    lab: str

    @property
    def veth(self) -> str:
        # Interface names are limited to 15 characters.
        return f"{self.lab[:6]}-{self.name}"[:15]

    def cgroup(self, hierarchy: str) -> Path:
        return Path("/sys/fs/cgroup") / hierarchy / self.lab / self.name


class Lab:
    def __init__(self, name: str | None = None, subnet: str | None = None):
        self.name = name or os.environ.get("MC_LAB", "mclab")
        self.subnet = subnet or os.environ.get("MC_LAB_SUBNET", "10.88.0")
        self.dir = util.STATE_ROOT / "labs" / self.name
        self.netns = f"{self.name}-sw"
        self.host_if = f"{self.name[:10]}-host"
        self.state_file = self.dir / "state.json"

    # ----- state -------------------------------------------------------------------------
    def load_state(self) -> dict | None:
        if not self.state_file.exists():
            return None
        return json.loads(self.state_file.read_text())

    def save_state(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))

    def node_names(self) -> list[str]:
        state = self.load_state()
        if state is None:
            raise util.LabError(f"lab '{self.name}' is not up: run `lab/lab up` first")
        return state["nodes"]

    def node(self, name: str) -> Node:
        names = self.node_names()
        if name not in names:
            raise util.LabError(f"unknown node '{name}': this lab has {', '.join(names)}")
        return self._node(name)

    def _node(self, name: str) -> Node:
        return Node(
            name=name,
            ip=f"{self.subnet}.{DEFAULT_NODES[name]}",
            root=self.dir / "nodes" / name / "root",
            lab=self.name,
        )

    def guests(self) -> list[str]:
        state = self.load_state() or {}
        return state.get("guests", [])

    def ping_timeout(self) -> int:
        """Seconds a test.ping waits for a minion: a TCG guest's minion takes seconds per job
        (more while it converges), and a short timeout both misses it and makes the master
        queue more jobs on it (the CLI's find_job)."""
        return 30 if self.guests() else 3

    def guest(self, node: Node) -> guest_mod.Guest | None:
        """The node's qemu guest, or None for an nspawn node."""
        return guest_mod.Guest(self, node) if node.name in self.guests() else None

    @contextlib.contextmanager
    def lock(self):
        util.STATE_ROOT.joinpath("labs").mkdir(parents=True, exist_ok=True)
        with open(util.STATE_ROOT / "labs" / f"{self.name}.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise util.LabError(
                    f"another lab command is changing lab '{self.name}' right now; wait for it"
                ) from None
            yield

    # ----- up / down -----------------------------------------------------------------------
    def up(self, nodes: list[str], storage: str = "shared_path") -> None:
        util.require_root()
        util.require_tools("systemd-nspawn", "nsenter", "ip", "nft", "debootstrap")
        if storage not in STORAGES:
            raise util.LabError(f"--storage {storage}: choose one of {', '.join(STORAGES)}")
        guests = [n for n in SHARED_STORE_NODES if n in nodes] if storage == "drbd" else []
        if guests:
            util.require_tools("qemu-system-x86_64", "mkfs.ext4")
        unknown = [n for n in nodes if n not in DEFAULT_NODES]
        if unknown:
            raise util.LabError(
                f"unknown node name(s): {', '.join(unknown)}; "
                f"known nodes: {', '.join(DEFAULT_NODES)}"
            )
        if MASTER not in nodes:
            raise util.LabError(f"the node '{MASTER}' (salt-master) must be part of the lab")
        with self.lock():
            state = self.load_state()
            if state is not None:
                raise util.LabError(
                    f"lab '{self.name}' is already up ({', '.join(state['nodes'])}); "
                    "see `lab/lab status`, or run `lab/lab down` first"
                )
            if not (util.VENV / "bin/salt-minion").exists():
                raise util.LabError(f"no Salt venv at {util.VENV}: run lab/bootstrap-venv")
            base = image.ensure_image(util.REPO / "lab/packages.txt")
            layer = guest_image.ensure_layer(base) if guests else None
            started = time.monotonic()
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.save_state({
                    "nodes": nodes, "subnet": self.subnet, "image": str(base),
                    "storage": storage, "guests": guests,
                    "layer": str(layer) if layer else None,
                })  # fmt: skip
                self._lab_pillar(storage)
                self._network_up()
                for name in nodes:
                    self._prepare_node(self._node(name), base, nodes)
                for name in nodes:
                    self._boot(self._node(name))
                for name in nodes:
                    self._wait_booted(self._node(name))
                self._wait_minions(nodes)
            except BaseException:
                util.info("up failed: tearing down what was built")
                self._teardown(nodes)
                raise
            util.info(
                f"lab '{self.name}' is up: {len(nodes)} nodes in {time.monotonic() - started:.1f} s"
            )

    def down(self) -> None:
        util.require_root()
        with self.lock():
            state = self.load_state()
            nodes = state["nodes"] if state else list(DEFAULT_NODES)
            started = time.monotonic()
            self._teardown(nodes)
            util.info(f"lab '{self.name}' is down ({time.monotonic() - started:.1f} s)")

    def _teardown(self, nodes: list[str]) -> None:
        members = [self._node(n) for n in nodes]
        for node in members:
            guest = self.guest(node)
            if guest is not None:
                guest.kill()
        for node in members:
            self._signal_nspawn(node, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(self._pids(n) for n in members):
            time.sleep(0.2)
        for node in members:
            self._hard_kill(node)
            self._kill_strays(node)
            self._release_node(node)
        self._network_down()
        LAB_PILLAR.unlink(missing_ok=True)
        if not os.environ.get("MC_LAB_KEEP_FAILED"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ----- node lifecycle ----------------------------------------------------------------------
    def start(self, name: str) -> None:
        node = self.node(name)
        if self.is_running(node):
            raise util.LabError(f"node '{name}' is already running")
        with self.lock():
            if self.guest(node) is None:
                self._release_cgroups(node)
            self._boot(node)
            self._wait_booted(node)

    def stop(self, name: str) -> None:
        node = self.node(name)
        if not self.is_running(node):
            raise util.LabError(f"node '{name}' is not running")
        guest = self.guest(node)
        if guest is not None:
            guest.stop()
            return
        self._signal_nspawn(node, signal.SIGTERM)
        try:
            util.wait_for(lambda: not self._pids(node), 15, what=f"{name} to power off")
        except util.LabError:
            self._hard_kill(node)
        self._drop_link(node)
        self._release_cgroups(node)

    def kill(self, name: str) -> None:
        """A hard crash: every process of the node dies at once, its netns (and IPs) with it."""
        node = self.node(name)
        if not self.is_running(node):
            raise util.LabError(f"node '{name}' is not running")
        guest = self.guest(node)
        if guest is not None:
            guest.kill()
            return
        self._hard_kill(node)
        self._drop_link(node)
        self._kill_strays(node)
        self._release_cgroups(node)

    def _drop_link(self, node: Node) -> None:
        # the kernel tears a dead namespace (and its veth) down asynchronously, seconds later on a
        # loaded machine: the address kept answering ARP/ping for >5 s after a kill in CI. A
        # powered-off machine's link goes at once, so its bridge end is deleted here (the pair
        # goes with it).
        util.run(["ip", "-n", self.netns, "link", "del", node.veth], check=False)

    def is_running(self, node: Node) -> bool:
        guest = self.guest(node)
        if guest is not None:
            return guest.alive()
        return bool(self._pids(node))

    # ----- running commands --------------------------------------------------------------------
    def leader(self, node: Node) -> int:
        """Host PID of the node's systemd (PID 1 inside the node)."""
        if self.guest(node) is not None:
            raise util.LabError(
                f"node '{node.name}' is a qemu guest: it has no host PID to enter (use Lab.run)"
            )
        for pid in self._pids(node):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                    return pid
        raise util.LabError(f"node '{node.name}' is not running")

    def exec_args(self, node: Node, cmd: list[str], cwd: str = "/root") -> list[str]:
        env = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "TERM=" + os.environ.get("TERM", "dumb"),
        ]
        # nsenter's --wd resolves the directory on the host side: change into it inside.
        return [
            "nsenter", "-t", str(self.leader(node)), "-a",
            "env", "-i", *env, "sh", "-c", 'cd "$0" && exec "$@"', cwd, *cmd,
        ]  # fmt: skip

    def run(self, name: str, cmd: list[str], capture: bool = False, cwd: str = "/root", **kw):
        node = self.node(name)
        guest = self.guest(node)
        if guest is not None:
            if cwd != "/root":
                cmd = ["sh", "-c", 'cd "$0" && exec "$@"', cwd, *cmd]
            res = guest.run(cmd, timeout=kw.get("timeout") or 3600, stdin=kw.get("input"))
            if not capture:
                sys.stdout.write(res.stdout)
                sys.stderr.write(res.stderr)
            return res
        args = self.exec_args(node, cmd, cwd=cwd)
        if capture:
            return subprocess.run(args, capture_output=True, text=True, check=False, **kw)
        return subprocess.run(args, check=False, **kw)

    def salt(self, args: list[str], command: str = "salt", capture: bool = False, **kw):
        return self.run(MASTER, [command, *args], capture=capture, cwd="/srv/mailcluster", **kw)

    # ----- partitions ----------------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        na, nb = self.node(a), self.node(b)
        if a == b:
            raise util.LabError("partition needs two different nodes")
        table = self._forward_chain()
        for src, dst in ((na, nb), (nb, na)):
            self._nft(f'add rule {table} forward iifname "{src.veth}" oifname "{dst.veth}" drop')

    def drop_from(self, src: str, dst: str, sport: int) -> None:
        """Drop what ``src`` sends to ``dst`` from TCP port ``sport`` (e.g. the master's
        publications to one minion: 4505), everything else passing; ``heal`` removes it."""
        na, nb = self.node(src), self.node(dst)
        table = self._forward_chain()
        self._nft(
            f'add rule {table} forward iifname "{na.veth}" oifname "{nb.veth}"'
            f" meta l4proto tcp tcp sport {int(sport)} drop"
        )

    def _forward_chain(self) -> str:
        """The switch's filter table and its forward chain (created when missing), where the
        cuts go; ``heal`` deletes the table. Returns the table's name for ``add rule``."""
        table = f"bridge {self.name}"
        self._nft(f"add table {table}")
        self._nft(
            f"add chain {table} forward {{ type filter hook forward priority 0 ; policy accept ; }}"
        )
        return table

    def heal(self) -> None:
        self.node_names()
        self._nft(f"delete table bridge {self.name}", check=False)

    def partitions(self) -> list[tuple[str, str]]:
        out = self._nft(f"list table bridge {self.name}", check=False).stdout
        by_veth = {self._node(n).veth: n for n in self.node_names()}
        cuts = set()
        for line in out.splitlines():
            words = line.replace('"', "").split()
            if "iifname" in words and "oifname" in words:
                src = by_veth.get(words[words.index("iifname") + 1])
                dst = by_veth.get(words[words.index("oifname") + 1])
                if src and dst:
                    cuts.add(tuple(sorted((src, dst))))
        return sorted(cuts)

    def _nft(self, rule: str, check: bool = True):
        return util.run(["ip", "netns", "exec", self.netns, "nft", *rule.split()], check=check)

    # ----- internals: network ------------------------------------------------------------------
    def _network_up(self) -> None:
        util.step(f"network: netns {self.netns}, bridge br0, host {self.subnet}.1")
        if Path(f"/run/netns/{self.netns}").exists():
            raise util.LabError(f"netns {self.netns} already exists: run `lab/lab down` first")
        ns = ["ip", "-n", self.netns]
        util.run(["ip", "netns", "add", self.netns])
        util.run([*ns, "link", "set", "lo", "up"])
        util.run([*ns, "link", "add", "br0", "type", "bridge"])
        util.run([*ns, "link", "set", "br0", "up"])
        util.run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "uplink",
                  "netns", self.netns])  # fmt: skip
        util.run([*ns, "link", "set", "uplink", "master", "br0", "up"])
        util.run(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.host_if])
        util.run(["ip", "link", "set", self.host_if, "up"])

    def _network_down(self) -> None:
        util.run(["ip", "link", "del", self.host_if], check=False)
        util.run(["ip", "netns", "del", self.netns], check=False)

    # ----- internals: nodes --------------------------------------------------------------------
    def _prepare_node(self, node: Node, base: Path, members: list[str]) -> None:
        guest = self.guest(node)
        hosts = {n: self._node(n).ip for n in members}
        if guest is not None:
            master_ip = self._node(MASTER).ip
            guest.prepare(
                base,
                Path(self.load_state()["layer"]),
                lambda root: nodefiles.write_node_files(root, node.name, node.ip, hosts, master_ip),
            )
            return
        top = node.root.parent
        for sub in ("upper", "work", "root"):
            (top / sub).mkdir(parents=True, exist_ok=True)
        util.run([
            "mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={base},upperdir={top / 'upper'},workdir={top / 'work'}", node.root,
        ])  # fmt: skip
        nodefiles.write_node_files(node.root, node.name, node.ip, hosts, self._node(MASTER).ip)
        if node.name == MASTER:
            nodefiles.write_master_files(node.root)

    def _lab_pillar(self, storage: str) -> None:
        """pillar/lab.sls (git-ignored; pillar/top.sls includes it when present): what `up`
        chose that pillar must know. Only --storage drbd needs it; `down` removes it."""
        LAB_PILLAR.unlink(missing_ok=True)
        if storage == "drbd":
            shutil.copy(util.REPO / "lab/pillar-drbd.sls", LAB_PILLAR)

    def _veth_present(self, node: Node) -> bool:
        cmd = ["ip", "-n", self.netns, "link", "show", node.veth]
        return util.run(cmd, check=False).returncode == 0

    def _boot(self, node: Node) -> None:
        guest = self.guest(node)
        if guest is not None:
            guest.boot(*guest_image.kernel_files(Path(self.load_state()["layer"])))
            return
        # a node killed a moment ago: the kernel may still be tearing its network namespace
        # down, and with it the old veth, and nspawn then fails ("Failed to add new veth
        # interfaces: File exists"; seen when `start` followed `kill` on a loaded machine)
        try:
            util.wait_for(lambda: not self._veth_present(node), 10, what="the old veth to go")
        except util.LabError:
            util.run(["ip", "-n", self.netns, "link", "del", node.veth], check=False)
        for hierarchy in CGROUP_HIERARCHIES:
            node.cgroup(hierarchy).mkdir(parents=True, exist_ok=True)
        binds = [
            f"--bind-ro={util.REPO}:/srv/mailcluster",
            f"--bind-ro={util.VENV}",
        ]
        if node.name in SHARED_STORE_NODES:
            shared = self.dir / "shared"
            shared.mkdir(exist_ok=True)
            binds.append(f"--bind={shared}:/srv/shared")
        nspawn = [
            "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot",
            "--console=passive", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
            "-D", str(node.root), "-M", node.name,
            f"--network-veth-extra={node.veth}:eth0",
            f"--capability={NODE_CAPABILITIES}",
            *binds,
        ]  # fmt: skip
        enter_cgroups = " && ".join(
            f"echo $$ > {node.cgroup(h) / 'cgroup.procs'}" for h in CGROUP_HIERARCHIES
        )
        launcher = f'{enter_cgroups} && exec nsenter --net=/run/netns/{self.netns} "$@"'
        log = open(node.root.parent / "console.log", "ab")  # noqa: SIM115 - owned by the child
        subprocess.Popen(
            ["sh", "-c", launcher, "lab-launch", *nspawn],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        util.wait_for(lambda: self._veth_present(node), 20, what=f"{node.name}'s network interface")
        util.run(["ip", "-n", self.netns, "link", "set", node.veth, "master", "br0", "up"])

    def _wait_booted(self, node: Node) -> None:
        guest = self.guest(node)
        if guest is not None:
            guest.wait_booted()
            return

        def booted():
            try:
                args = self.exec_args(node, ["systemctl", "is-system-running"])
            except util.LabError:
                return False
            out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
            return out.strip() in ("running", "degraded")

        util.wait_for(booted, 90, interval=0.3, what=f"{node.name} to boot")
        util.info(f"   {node.name} booted ({node.ip})")

    def _wait_minions(self, nodes: list[str]) -> None:
        util.step(f"waiting for {len(nodes)} salt-minions to answer the master")
        answered: set[str] = set()
        # Guests (TCG) start their minion minutes after an nspawn node and take seconds per
        # job: a short ping every second would queue dozens of pings (and the CLI's
        # find_job calls) in them. So only the nodes not heard yet are asked, with a timeout
        # long enough for a slow minion to answer the one ping it got.
        slow = bool(self.guests())
        timeout = 60 if slow else 5

        def all_answer():
            missing = ",".join(sorted(set(nodes) - answered))
            proc = self.salt(
                ["-L", missing, "test.ping", "--out=json", "--static", "-t", str(timeout)],
                capture=True,
            )
            with contextlib.suppress(json.JSONDecodeError):
                answered.update(k for k, v in json.loads(proc.stdout or "{}").items() if v is True)
            return set(nodes) <= answered

        wait = 1200 if slow else 180
        try:
            util.wait_for(all_answer, wait, interval=1, what="every salt-minion to answer")
        except util.LabError:
            silent = ", ".join(sorted(set(nodes) - answered))
            raise util.LabError(f"no answer from the salt-minion of {silent} in {wait} s") from None

    def _pids(self, node: Node) -> list[int]:
        base = node.cgroup("unified")
        if not base.exists():
            return []
        pids = []
        # os.walk, unlike Path.rglob, tolerates cgroups that vanish while it walks.
        for dirpath, _dirs, _files in os.walk(base):
            with contextlib.suppress(OSError):
                pids.extend(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
        return pids

    def _nspawn_pid(self, node: Node) -> int | None:
        for pid in self._pids(node):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd-nspawn":
                    return pid
        return None

    def _signal_nspawn(self, node: Node, sig: int) -> None:
        pid = self._nspawn_pid(node)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _hard_kill(self, node: Node) -> None:
        kill_file = node.cgroup("unified") / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
            with contextlib.suppress(util.LabError):
                util.wait_for(lambda: not self._pids(node), 10, what=f"{node.name} to die")

    def _kill_strays(self, node: Node) -> None:
        """Kill processes entered into the node from outside its cgroup (nsenter)."""
        root = str(node.root)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(proc / "root").startswith(root):
                    os.kill(int(proc.name), signal.SIGKILL)

    def _release_cgroups(self, node: Node) -> None:
        for hierarchy in CGROUP_HIERARCHIES:
            top = node.cgroup(hierarchy)
            if not top.exists():
                continue
            for sub in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
            with contextlib.suppress(OSError):
                top.parent.rmdir()  # the lab's own cgroup, once its last node is gone
        for leftover in ("unix-export", "propagate", "incoming"):
            path = Path("/run/systemd/nspawn") / leftover / node.name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        with contextlib.suppress(OSError):
            for sub in Path("/run/systemd/nspawn").glob("*"):
                sub.rmdir()
            Path("/run/systemd/nspawn").rmdir()

    def _release_node(self, node: Node) -> None:
        self._release_cgroups(node)
        image._unmount_under(node.root)
