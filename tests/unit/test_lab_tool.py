"""The lab tool's pure parts: package list, image key, node files, CLI errors."""

from __future__ import annotations

import subprocess

import pytest
from mclab import cli, image, nodefiles, util
from mclab.lab import DEFAULT_NODES, Lab


def test_package_list_sections_and_comments():
    text = "# c\n[install]\na b  # trailing\nc\n[download]\nd\n[guest]\ne f\n"
    assert image.parse_package_list(text) == {
        "install": ["a", "b", "c"],
        "download": ["d"],
        "guest": ["e", "f"],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n[install]\nb\n", "line 1: package outside a section"),
        ("[install]\na\n[extras]\nb\n", "line 3: unknown section [extras]"),
        ("[download]\na\n", "the [install] section is empty"),
    ],
)
def test_package_list_errors_name_the_line(text, message):
    with pytest.raises(util.LabError, match=message.replace("[", r"\[").replace("]", r"\]")):
        image.parse_package_list(text)


def test_repo_package_list_is_valid_and_has_the_roles_packages():
    packages = image.parse_package_list((util.REPO / "lab/packages.txt").read_text())
    for needed in ("postfix", "dovecot-imapd", "mariadb-server", "bind9", "heartbeat", "python3"):
        assert needed in packages["install"]
    assert {"roundcube-core", "postfixadmin"} <= set(packages["download"])
    # the guests' kernel and the mail pair's slowest installs under TCG (issue 11)
    assert {"linux-image-amd64", "rspamd", "certbot"} <= set(packages["guest"])


def test_image_key_changes_with_the_package_list():
    assert image.image_key("[install]\na\n") == image.image_key("[install]\na\n")
    assert image.image_key("[install]\na\n") != image.image_key("[install]\na b\n")


def test_hosts_file_lists_every_node():
    text = nodefiles.hosts_file({"salt": "10.88.0.2", "mx1": "10.88.0.11"})
    assert "10.88.0.2 salt\n" in text and "10.88.0.11 mx1\n" in text
    assert text.startswith("127.0.0.1 localhost\n")


def test_node_files_configure_identity_network_and_minion(tmp_path):
    nodefiles.write_node_files(tmp_path, "mx1", "10.88.0.11", {"mx1": "10.88.0.11"}, "10.88.0.2")
    assert (tmp_path / "etc/hostname").read_text() == "mx1\n"
    assert "Address=10.88.0.11/24" in (tmp_path / "etc/systemd/network/10-eth0.network").read_text()
    minion = (tmp_path / "etc/salt/minion.d/lab.conf").read_text()
    assert "id: mx1\n" in minion and "master: 10.88.0.2\n" in minion and "transport: tcp" in minion
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/salt-minion.service"
    assert wants.is_symlink()


def test_veth_names_fit_the_kernel_limit():
    lab = Lab("a-very-long-lab-name", "10.99.0")
    for name in DEFAULT_NODES:
        assert len(lab._node(name).veth) <= 15
    assert len(lab.host_if) <= 15


def test_cli_rejects_commands_on_a_lab_that_is_down(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(util, "STATE_ROOT", tmp_path)
    monkeypatch.setenv("MC_LAB", "nolab")
    assert cli.main(["kill", "mx1"]) == 1
    assert "lab 'nolab' is not up" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(util, "STATE_ROOT", tmp_path)
    assert cli.main(["salt"]) == 1
    assert "usage: lab/lab salt ARGS" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


@pytest.mark.parametrize(
    ("argv", "passed"),
    [
        (["salt", "-L", "mx1,mx2", "test.ping"], ["-L", "mx1,mx2", "test.ping"]),
        (["salt", "--", "-G", "os:Debian", "test.ping"], ["-G", "os:Debian", "test.ping"]),
        (["salt-run", "--out=json", "manage.up"], ["--out=json", "manage.up"]),
    ],
)
def test_cli_passes_salt_options_through(monkeypatch, argv, passed):
    """`lab/lab salt -L ...`: the options are salt's, not the lab tool's."""
    seen = {}

    def fake_salt(self, args, command="salt", **kwargs):
        seen.update(args=args, command=command)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(cli.Lab, "salt", fake_salt)
    assert cli.main(argv) == 0
    assert seen == {"args": passed, "command": argv[0]}


def test_missing_host_tool_names_the_package(monkeypatch):
    monkeypatch.setattr(util.shutil, "which", lambda tool: None)
    with pytest.raises(util.LabError, match="apt-get install debootstrap systemd-container"):
        util.require_tools("debootstrap", "systemd-nspawn")
