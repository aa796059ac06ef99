"""
The heartbeat module, states and beacon against real heartbeat 3.0.6 between two nodes.

Each test runs on two kinds of node pair (``pair`` fixture, parametrised):

- ``lab``: two nodes of an own nspawn lab instance (``lab/lab``, instance ``MC_HB_LAB``,
  default ``mchbtest`` on ``MC_HB_LAB_SUBNET``, default 10.86.0; booted and torn down here
  unless it is already up). Skips without root or systemd-nspawn (the lab tier's check).
- ``netns``: two heartbeat daemons on this machine, each in its own network, mount, UTS and
  PID namespace, joined by a veth pair: the set-up that recorded tests/fixtures/heartbeat/.
  Skips without root, unshare/nsenter/ip or the ``heartbeat`` package on the host.

Salt runs INSIDE a node (``salt-call --local`` from /opt/mc-venv with this repo as
module_dirs), as a minion there would. mx2 crashes hard (``lab/lab kill`` / SIGKILL to its
PID namespace's init). About a minute per kind.

    /opt/mc-venv/bin/pytest -m lab tests/lab/test_heartbeat_real.py
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("MC_VENV", "/opt/mc-venv"))
NODES = ("mx1", "mx2")
NS_PREFIX = "mctest-hb"
LAB_NAME = os.environ.get("MC_HB_LAB", "mchbtest")
LAB_SUBNET = os.environ.get("MC_HB_LAB_SUBNET", "10.86.0")
LAB_CLI = REPO / "lab" / "lab"


def _missing_netns():
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces)"
    for tool in ("unshare", "nsenter", "ip", "cl_status"):
        if shutil.which(tool) is None:
            return f"{tool} not found (heartbeat tests need util-linux, iproute2, heartbeat)"
    if not Path("/etc/init.d/heartbeat").exists():
        return "heartbeat is not installed (apt-get install --no-install-recommends heartbeat)"
    if not (VENV / "bin" / "salt-call").exists():
        return f"no salt-call in {VENV}"
    return None


def _ha_cf(net):
    return f"""logfile /var/log/ha-log
keepalive 200ms
warntime 1
deadtime 2
initdead 6
udpport 694
ucast eth0 {net}.11
ucast eth0 {net}.12
auto_failback on
node mx1
node mx2
crm no
"""


def _haresources(net):
    return f"mx1 IPaddr2::{net}.100/24/eth0\nmx2 IPaddr2::{net}.101/24/eth0\n"


AUTHKEYS = "auth 1\n1 sha1 mailcluster-test-secret\n"


def _minion_config(node, repo):
    return json.dumps(
        {
            "id": node,
            "root_dir": "/tmp/salt",
            "file_client": "local",
            "module_dirs": [str(repo)],
            "log_level_logfile": "warning",
        }
    )


BEACON_SCRIPT = """
import json, time
import salt.beacons, salt.config, salt.loader
opts = salt.config.minion_config("/tmp/salt/minion")
opts["grains"] = salt.loader.grains(opts)
mods = salt.loader.minion_mods(opts)
beacons = salt.beacons.Beacon(opts, mods)
conf = {"mailcluster_ha": [{"heartbeat": True}, {"drbd": False}]}
first = beacons.process(conf, opts["grains"])
open("/tmp/beacon.ready", "w").write(json.dumps(first))
events, deadline = [], time.time() + 40
while time.time() < deadline and not events:
    time.sleep(0.3)
    events = beacons.process(conf, opts["grains"])
print(json.dumps({"first": first, "events": events}))
"""


class NodePair:
    """Two heartbeat nodes; subclasses say how to get into a node."""

    net = ""

    def vip(self, node):
        return f"{self.net}.{100 if node == 'mx1' else 101}"

    def configure(self, node, repo):
        """Write heartbeat's and salt-call's configuration into ``node``."""
        files = {
            "/etc/ha.d/ha.cf": (_ha_cf(self.net), "644"),
            "/etc/ha.d/haresources": (_haresources(self.net), "644"),
            "/etc/ha.d/authkeys": (AUTHKEYS, "600"),
            "/tmp/salt/minion": (_minion_config(node, repo), "644"),
            "/tmp/beacon.py": (BEACON_SCRIPT, "644"),
        }
        for path, (text, mode) in files.items():
            self.run(
                node,
                f"mkdir -p $(dirname {path}) && cat > {path} && chmod {mode} {path}",
                stdin=text,
            )

    def salt(self, node, *args):
        """``salt-call --local --out=json ARGS`` inside ``node``; returns the 'local' value."""
        quoted = " ".join(f"'{arg}'" for arg in args)
        proc = self.run(
            node,
            f"{VENV}/bin/salt-call --local --config-dir=/tmp/salt --out=json {quoted}",
            check=False,
        )
        try:
            return json.loads(proc.stdout)["local"]
        except (ValueError, KeyError) as exc:
            raise AssertionError(
                f"salt-call {args} on {node}: {proc.stdout} {proc.stderr}"
            ) from exc

    def state(self, node, fun, **kwargs):
        args = [f"{key}={json.dumps(value)}" for key, value in kwargs.items()]
        ret = self.salt(node, "state.single", fun, *args)
        return next(iter(ret.values()))

    def holds(self, node, vip):
        return f" {vip}/" in self.run(node, "ip -o addr show").stdout

    def read(self, node, path):
        proc = self.run(node, f"cat {path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def wait(self, what, func, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if func():
                return time.monotonic()
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


class NetnsPair(NodePair):
    """Two heartbeat nodes in namespaces on this machine."""

    net = "10.89.8"

    def __init__(self):
        self.work = Path(tempfile.mkdtemp(prefix="mctest-hb."))
        self.anchors = {}

    def sh(self, *cmd, check=True):
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    def up(self):
        for node in NODES:
            self.sh("ip", "netns", "add", f"{NS_PREFIX}-{node}")
        self.sh("ip", "link", "add", "mchb1", "type", "veth", "peer", "name", "mchb2")
        for idx, node in enumerate(NODES, start=1):
            ns = f"{NS_PREFIX}-{node}"
            self.sh("ip", "link", "set", f"mchb{idx}", "netns", ns)
            self.sh("ip", "-n", ns, "link", "set", f"mchb{idx}", "name", "eth0")
            self.sh("ip", "-n", ns, "addr", "add", f"{self.net}.{10 + idx}/24", "dev", "eth0")
            self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self.sh("ip", "-n", ns, "link", "set", "lo", "up")
            root = self.work / node
            (root / "tmp").mkdir(parents=True)
            shutil.copytree("/etc/ha.d", root / "ha.d", symlinks=True)
            shutil.copytree("/var/lib/heartbeat", root / "lib", symlinks=True)
            for name in ("hb_uuid", "hostcache", "delhostcache"):
                (root / "lib" / name).unlink(missing_ok=True)
            self._anchor(node, ns)
            self.configure(node, REPO)

    def _anchor(self, node, ns):
        root = self.work / node
        # The node gets a private /tmp; a checkout that lives under /tmp (CI clones may) is
        # carried across the over-mount so that salt-call still finds _modules etc.
        keep_repo, restore_repo = "", ""
        if str(REPO).startswith("/tmp/"):
            keep_repo = f"mkdir -p /run/mc-repo && mount --bind {REPO} /run/mc-repo; "
            restore_repo = f"mkdir -p {REPO} && mount --bind /run/mc-repo {REPO}; "
        setup = (
            f"hostname {node}; mount -t tmpfs tmpfs /run; mkdir -p /run/lock; {keep_repo}"
            f"mount --bind {root / 'ha.d'} /etc/ha.d; "
            f"mount --bind {root / 'lib'} /var/lib/heartbeat; "
            f"mount --bind {root / 'tmp'} /tmp; {restore_repo}mount -t tmpfs tmpfs /var/log; "
            "touch /tmp/.anchored; exec sleep infinity"
        )
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "unshare",
                "-m",
                "-u",
                "-p",
                "-f",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                setup,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            out = self.sh("pgrep", "-P", str(proc.pid), "sleep", check=False).stdout.split()
            if out and (root / "tmp" / ".anchored").exists():
                self.anchors[node] = int(out[0])
                return
            time.sleep(0.1)
        raise RuntimeError(f"namespace anchor for {node} did not start")

    def _enter(self, node):
        return ["nsenter", "-t", str(self.anchors[node]), "-m", "-u", "-n", "-p", "--"]

    def run(self, node, shell, check=True, timeout=120, stdin=None):
        cmd = [*self._enter(node), "sh", "-c", f"cd / && {shell}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"{node}: {shell!r} rc={proc.returncode}: {proc.stderr}")
        return proc

    def popen(self, node, argv):
        return subprocess.Popen(
            [*self._enter(node), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def kill(self, node):
        os.kill(self.anchors.pop(node), 9)

    def down(self):
        for node in list(self.anchors):
            self.kill(node)
        time.sleep(0.5)
        for node in NODES:
            self.sh("ip", "netns", "del", f"{NS_PREFIX}-{node}", check=False)
        shutil.rmtree(self.work, ignore_errors=True)


class LabPair(NodePair):
    """mx1 and mx2 of an own nspawn lab instance (never the shared default lab)."""

    def __init__(self, name=LAB_NAME, subnet=LAB_SUBNET):
        if name == "mclab":
            raise RuntimeError("the heartbeat test reconfigures its nodes: use an own instance")
        self.name, self.net = name, subnet
        self.env = dict(os.environ, MC_LAB=name, MC_LAB_SUBNET=subnet)
        self.booted = False

    def cli(self, *args, timeout=600, check=True, stdin=None):
        proc = subprocess.run(
            [str(LAB_CLI), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"lab/lab {args}: rc={proc.returncode}: {proc.stderr}")
        return proc

    def up(self):
        status = json.loads(self.cli("status", "--json").stdout or "{}")
        if not status.get("up"):
            self.cli("up", "--nodes", "salt,mx1,mx2")
            self.booted = True
        for node in NODES:
            vips = " ".join(f"ip addr del {self.vip(n)}/24 dev eth0 2>/dev/null;" for n in NODES)
            self.run(node, f"systemctl stop heartbeat; {vips} true")
            self.configure(node, "/srv/mailcluster")

    def run(self, node, shell, check=True, timeout=120, stdin=None):
        proc = self.cli(
            "run",
            node,
            "--",
            "sh",
            "-c",
            f"cd / && {shell}",
            timeout=timeout,
            check=False,
            stdin=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{node}: {shell!r} rc={proc.returncode}: {proc.stderr}")
        return proc

    def popen(self, node, argv):
        return subprocess.Popen(
            [str(LAB_CLI), "run", node, "--", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def kill(self, node):
        self.cli("kill", node)

    def down(self):
        if self.booted:
            self.cli("down", check=False)
        else:  # leave a lab we did not boot as we found it, mx2 included
            for node in NODES:
                self.cli("start", node, check=False)
                self.run(node, "systemctl stop heartbeat; true", check=False)


def _lab_problem():
    """The lab tier's conditions (tests/lab/conftest.py), without importing it."""
    if os.geteuid() != 0:
        return "the lab tier needs root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (run lab/host-setup)"
    if not (VENV / "bin" / "salt-minion").exists():
        return f"no Salt venv at {VENV} (run lab/bootstrap-venv)"
    return None


@pytest.fixture(scope="module", params=["netns", "lab"])
def pair(request):
    if request.param == "netns":
        reason = _missing_netns()
        hb = NetnsPair()
    else:
        reason = _lab_problem()
        hb = LabPair()
    if reason:
        pytest.skip(f"{request.param}: {reason}")
    try:
        hb.up()
        yield hb
    finally:
        hb.down()


def test_01_daemon_stopped(pair):
    assert pair.salt("mx1", "heartbeat.status") == {"running": False}
    check = pair.salt("mx1", "heartbeat.check_config")
    assert check == {"valid": True, "errors": [], "nodes": ["mx1", "mx2"]}


def test_02_running_state_starts_and_waits(pair):
    pair.run("mx1", "service heartbeat start >/dev/null 2>&1")
    dry = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], test=True)
    assert dry["result"] is None
    assert dry["changes"] == {"service": {"old": "stopped", "new": "running"}}
    ret = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], timeout=60)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"service": {"old": "stopped", "new": "running"}}
    again = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"])
    assert (again["result"], again["changes"]) == (True, {})
    assert pair.salt("mx1", "heartbeat.nodes_status") == {"mx2": "active", "mx1": "active"}
    grain = pair.salt("mx1", "grains.get", "mailcluster_ha")
    assert grain["heartbeat"] == {"installed": True, "running": True, "node": "mx1"}
    assert isinstance(grain["drbd"], dict)
    assert isinstance(grain["o2cb"], dict)
    pair.wait(
        "both VIPs at home",
        lambda: pair.holds("mx1", pair.vip("mx1")) and pair.holds("mx2", pair.vip("mx2")),
    )


def test_03_resources_held_takes_over_and_is_idempotent(pair):
    # rscstatus says "local" on both nodes here; the state must look at the addresses
    pair.wait("heartbeat settled", lambda: pair.salt("mx1", "heartbeat.resource_status") == "local")
    dry = pair.state("mx1", "heartbeat.resources_held", name="vips", which="foreign", test=True)
    assert dry["result"] is None
    assert dry["changes"] == {"groups": {"old": [], "new": ["mx2"]}}
    ret = pair.state("mx1", "heartbeat.resources_held", name="vips", which="foreign", timeout=30)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"groups": {"old": [], "new": ["mx2"]}}
    assert pair.holds("mx1", pair.vip("mx2"))
    assert not pair.holds("mx2", pair.vip("mx2"))
    again = pair.state("mx1", "heartbeat.resources_held", name="vips", which="foreign")
    assert (again["result"], again["changes"]) == (True, {})
    # give it back with the module
    assert pair.salt("mx1", "heartbeat.standby", "foreign") is True
    pair.wait("mx2's VIP back home", lambda: pair.holds("mx2", pair.vip("mx2")))
    assert pair.salt("mx2", "heartbeat.holds", "local") is True


def test_04_beacon_fires_on_peer_crash_and_states_see_it(pair):
    pair.run("mx1", "rm -f /tmp/beacon.ready")
    beacon = pair.popen("mx1", [f"{VENV}/bin/python", "/tmp/beacon.py"])
    pair.wait("beacon baseline", lambda: pair.read("mx1", "/tmp/beacon.ready"), timeout=60)
    assert json.loads(pair.read("mx1", "/tmp/beacon.ready")) == []  # baseline: no event
    killed = time.monotonic()
    pair.kill("mx2")
    out, err = beacon.communicate(timeout=90)
    fired = time.monotonic()
    result = json.loads(out)
    assert result["first"] == []
    events = result["events"]
    assert len(events) == 1, (events, err)
    assert events[0]["tag"] == "salt/beacon/mx1/mailcluster_ha/heartbeat/mx2"
    data = events[0]["data"]
    assert {k: data[k] for k in ("node", "peer", "kind", "old", "new")} == {
        "node": "mx1",
        "peer": "mx2",
        "kind": "heartbeat",
        "old": "active",
        "new": "dead",
    }
    assert fired - killed < 30
    # mx1 takes mx2's VIP over by itself (deadtime 2)
    pair.wait("takeover after the crash", lambda: pair.holds("mx1", pair.vip("mx2")), timeout=30)
    held = pair.state("mx1", "heartbeat.resources_held", name="vips", which="all")
    assert (held["result"], held["changes"]) == (True, {})
    running = pair.state(
        "mx1", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], timeout=1
    )
    assert running["result"] is False
    assert "mx2 is dead" in running["comment"]
