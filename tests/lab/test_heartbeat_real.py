"""
The heartbeat module, states and beacon against real heartbeat 3.0.6 between two nodes.

The two nodes (mx1, mx2) are heartbeat daemons on this machine, each in its own network,
mount, UTS and PID namespace, joined by a veth pair: the same set-up that recorded
tests/fixtures/heartbeat/ (see capture-netns.sh there). Salt runs INSIDE a node
(``salt-call --local`` from /opt/mc-venv with this repo as module_dirs), as a minion there
would. A hard crash of mx2 is a SIGKILL to its PID namespace's init.

Needs root, ``unshare``/``nsenter``/``ip``, the Debian package ``heartbeat`` (installed with
--no-install-recommends) and the venv; skips cleanly otherwise. About a minute.

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
NET = "10.89.8"
IPS = {"mx1": f"{NET}.11", "mx2": f"{NET}.12"}
VIPS = {"mx1": f"{NET}.100", "mx2": f"{NET}.101"}
NS_PREFIX = "mctest-hb"


def _missing():
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


HA_CF = f"""logfile /var/log/ha-log
keepalive 200ms
warntime 1
deadtime 2
initdead 6
udpport 694
ucast eth0 {IPS["mx1"]}
ucast eth0 {IPS["mx2"]}
auto_failback on
node mx1
node mx2
crm no
"""
HARESOURCES = f"mx1 IPaddr2::{VIPS['mx1']}/24/eth0\nmx2 IPaddr2::{VIPS['mx2']}/24/eth0\n"

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


class Pair:
    """Two heartbeat nodes in namespaces. ``run(node, cmd)`` runs inside a node."""

    def __init__(self):
        self.work = Path(tempfile.mkdtemp(prefix="mctest-hb."))
        self.anchors = {}

    def sh(self, *cmd, check=True):
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    def up(self):
        for node in IPS:
            self.sh("ip", "netns", "add", f"{NS_PREFIX}-{node}")
        self.sh("ip", "link", "add", "mchb1", "type", "veth", "peer", "name", "mchb2")
        for idx, node in enumerate(IPS, start=1):
            ns = f"{NS_PREFIX}-{node}"
            self.sh("ip", "link", "set", f"mchb{idx}", "netns", ns)
            self.sh("ip", "-n", ns, "link", "set", f"mchb{idx}", "name", "eth0")
            self.sh("ip", "-n", ns, "addr", "add", f"{IPS[node]}/24", "dev", "eth0")
            self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self.sh("ip", "-n", ns, "link", "set", "lo", "up")
            self._prepare(node)
            self._anchor(node, ns)

    def _prepare(self, node):
        root = self.work / node
        (root / "tmp" / "salt").mkdir(parents=True)
        shutil.copytree("/etc/ha.d", root / "ha.d", symlinks=True)
        shutil.copytree("/var/lib/heartbeat", root / "lib", symlinks=True)
        for name in ("hb_uuid", "hostcache", "delhostcache"):
            (root / "lib" / name).unlink(missing_ok=True)
        (root / "ha.d" / "ha.cf").write_text(HA_CF)
        (root / "ha.d" / "haresources").write_text(HARESOURCES)
        keys = root / "ha.d" / "authkeys"
        keys.write_text("auth 1\n1 sha1 mailcluster-test-secret\n")
        keys.chmod(0o600)
        (root / "tmp" / "salt" / "minion").write_text(
            json.dumps(
                {
                    "id": node,
                    "root_dir": "/tmp/salt",
                    "file_client": "local",
                    "module_dirs": [str(REPO)],
                    "log_level_logfile": "warning",
                }
            )
        )
        (root / "tmp" / "beacon.py").write_text(BEACON_SCRIPT)

    def _anchor(self, node, ns):
        root = self.work / node
        setup = (
            f"hostname {node}; mount -t tmpfs tmpfs /run; mkdir -p /run/lock; "
            f"mount --bind {root / 'ha.d'} /etc/ha.d; "
            f"mount --bind {root / 'lib'} /var/lib/heartbeat; "
            f"mount --bind {root / 'tmp'} /tmp; mount -t tmpfs tmpfs /var/log; "
            "exec sleep infinity"
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
        for _ in range(50):
            out = self.sh("pgrep", "-P", str(proc.pid), "sleep", check=False).stdout.split()
            if out:
                self.anchors[node] = int(out[0])
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"namespace anchor for {node} did not start")
        # wait for the bind mounts to be in place
        for _ in range(50):
            if self.run(node, "test -f /tmp/salt/minion", check=False).returncode == 0:
                return
            time.sleep(0.1)

    def run(self, node, shell, check=True, timeout=120):
        cmd = [
            "nsenter",
            "-t",
            str(self.anchors[node]),
            "-m",
            "-u",
            "-n",
            "-p",
            "--",
            "sh",
            "-c",
            f"cd / && {shell}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{node}: {shell!r} rc={proc.returncode}: {proc.stderr}")
        return proc

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

    def wait(self, what, func, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if func():
                return time.monotonic()
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def kill(self, node):
        os.kill(self.anchors.pop(node), 9)

    def down(self):
        for node in list(self.anchors):
            self.kill(node)
        time.sleep(0.5)
        for node in IPS:
            self.sh("ip", "netns", "del", f"{NS_PREFIX}-{node}", check=False)
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture(scope="module")
def pair():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    hb = Pair()
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
    pair.run("mx1", "/etc/init.d/heartbeat start >/dev/null 2>&1")
    dry = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], test=True)
    assert dry["result"] is None
    assert dry["changes"] == {"service": {"old": "stopped", "new": "running"}}
    ret = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], timeout=60)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"service": {"old": "stopped", "new": "running"}}
    again = pair.state("mx2", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"])
    assert (again["result"], again["changes"]) == (True, {})
    assert pair.salt("mx1", "heartbeat.nodes_status") == {"mx2": "active", "mx1": "active"}
    pair.wait(
        "both VIPs at home",
        lambda: pair.holds("mx1", VIPS["mx1"]) and pair.holds("mx2", VIPS["mx2"]),
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
    assert pair.holds("mx1", VIPS["mx2"])
    assert not pair.holds("mx2", VIPS["mx2"])
    again = pair.state("mx1", "heartbeat.resources_held", name="vips", which="foreign")
    assert (again["result"], again["changes"]) == (True, {})
    # give it back with the module
    assert pair.salt("mx1", "heartbeat.standby", "foreign") is True
    pair.wait("mx2's VIP back home", lambda: pair.holds("mx2", VIPS["mx2"]))
    assert pair.salt("mx2", "heartbeat.holds", "local") is True


def test_04_beacon_fires_on_peer_crash_and_states_see_it(pair):
    pair.run("mx1", "rm -f /tmp/beacon.ready")
    beacon = subprocess.Popen(
        [
            "nsenter",
            "-t",
            str(pair.anchors["mx1"]),
            "-m",
            "-u",
            "-n",
            "-p",
            "--",
            f"{VENV}/bin/python",
            "/tmp/beacon.py",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = pair.work / "mx1" / "tmp" / "beacon.ready"
    pair.wait("beacon baseline", ready.exists, timeout=60)
    assert json.loads(ready.read_text()) == []  # first run records, fires nothing
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
    pair.wait("takeover after the crash", lambda: pair.holds("mx1", VIPS["mx2"]), timeout=30)
    held = pair.state("mx1", "heartbeat.resources_held", name="vips", which="all")
    assert (held["result"], held["changes"]) == (True, {})
    running = pair.state(
        "mx1", "heartbeat.running", name="heartbeat", nodes=["mx1", "mx2"], timeout=1
    )
    assert running["result"] is False
    assert "mx2 is dead" in running["comment"]
