"""Files written into a node's own layer before it boots: identity, network, salt daemons."""

from __future__ import annotations

from pathlib import Path

from . import util

MINION_UNIT = """\
[Unit]
Description=Salt minion (lab: from the host's venv, bind-mounted read-only)
After=network-online.target

[Service]
ExecStart={venv}/bin/salt-minion
KillMode=process
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

MASTER_UNIT = """\
[Unit]
Description=Salt master (lab)
After=network-online.target

[Service]
ExecStart={venv}/bin/salt-master
LimitNOFILE=16384
KillMode=process
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

# TCP transport: the master notices a dead minion at once (salt/presence/change), where zeromq
# waits for the next loop_interval. Short keepalives catch a cut link in about 10 s.
TRANSPORT = """\
transport: tcp
tcp_keepalive: True
tcp_keepalive_idle: 5
tcp_keepalive_cnt: 3
tcp_keepalive_intvl: 2
"""

MINION_CONF = """\
# Written by the lab (lab/mclab/nodefiles.py).
id: {name}
master: {master_ip}
{transport}
acceptance_wait_time: 1
acceptance_wait_time_max: 5
random_reauth_delay: 0
recon_default: 500
recon_max: 3000
log_level_logfile: info
"""

MASTER_CONF = """\
# Written by the lab (lab/mclab/nodefiles.py). The repo is bind-mounted at /srv/mailcluster.
# A fixed id: once the roles give the node an FQDN, a derived id would change on a master
# restart and the master would make itself a new key that no minion trusts.
id: salt
interface: 0.0.0.0
{transport}
auto_accept: True
worker_threads: 3
presence_events: True
loop_interval: 5
timeout: 20
file_roots:
  base:
    - /srv/mailcluster/salt
    - /srv/mailcluster
pillar_roots:
  base:
    - /srv/mailcluster/pillar
# The reactor map and anything else the project adds to the master's configuration.
include:
  - /srv/mailcluster/reactor/master.d/*.conf
log_level_logfile: info
"""

SALT_COMMANDS = ("salt", "salt-call", "salt-run", "salt-key", "salt-minion", "salt-master")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _enable(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system/multi-user.target.wants" / unit
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{unit}")


def hosts_file(hosts: dict[str, str]) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{ip} {name}" for name, ip in hosts.items()]
    return "\n".join(lines) + "\n"


def write_node_files(root: Path, name: str, ip: str, hosts: dict[str, str], master_ip: str):
    venv = util.VENV
    _write(root / "etc/hostname", f"{name}\n")
    _write(root / "etc/hosts", hosts_file(hosts))
    _write(root / "etc/mailname", f"{name}\n")
    _write(
        root / "etc/systemd/network/10-eth0.network",
        f"[Match]\nName=eth0\n\n[Network]\nAddress={ip}/24\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
    )
    _write(
        root / "etc/salt/minion.d/lab.conf",
        MINION_CONF.format(name=name, master_ip=master_ip, transport=TRANSPORT),
    )
    _write(root / "etc/systemd/system/salt-minion.service", MINION_UNIT.format(venv=venv))
    _enable(root, "salt-minion.service")
    bindir = root / "usr/local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for command in SALT_COMMANDS:
        link = bindir / command
        if not link.is_symlink():
            link.symlink_to(venv / "bin" / command)


def write_master_files(root: Path) -> None:
    _write(root / "etc/salt/master.d/lab.conf", MASTER_CONF.format(transport=TRANSPORT))
    _write(root / "etc/systemd/system/salt-master.service", MASTER_UNIT.format(venv=util.VENV))
    _enable(root, "salt-master.service")
