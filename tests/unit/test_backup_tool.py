"""mailcluster-backup (salt/backup/files): what it keeps, prunes and counts, on a real
directory tree (the rsync and SQL parts run in tests/lab/test_backup_restore.py)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pathlib

import pytest

TOOL = pathlib.Path(__file__).resolve().parents[2] / "salt/backup/files/mailcluster-backup.py"


@pytest.fixture(scope="module")
def tool():
    loader = importlib.machinery.SourceFileLoader("mailcluster_backup_tool", str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def make_sets(root: pathlib.Path, names):
    for name in names:
        (root / name / "db").mkdir(parents=True)


def test_prune_keeps_the_newest_and_drops_partials(tool, tmp_path):
    names = ["20261201T010000Z", "20261202T010000Z", "20261203T010000Z", "20261204T010000Z"]
    make_sets(tmp_path, [*names, "20261205T010000Z.partial"])
    (tmp_path / ".lock").write_text("")
    gone = tool.prune(str(tmp_path), 3)
    assert sorted(gone) == ["20261201T010000Z", "20261205T010000Z.partial"]
    assert tool.complete_sets(str(tmp_path)) == names[1:]
    assert (tmp_path / ".lock").exists()


def test_prune_with_fewer_sets_than_retention_keeps_all(tool, tmp_path):
    make_sets(tmp_path, ["20261201T010000Z"])
    assert tool.prune(str(tmp_path), 7) == []
    assert tool.complete_sets(str(tmp_path)) == ["20261201T010000Z"]


def test_only_complete_set_names_count(tool, tmp_path):
    make_sets(tmp_path, ["20261201T010000Z", "20261201T010000Z.partial", "latest", "x"])
    assert tool.complete_sets(str(tmp_path)) == ["20261201T010000Z"]
    assert tool.complete_sets(str(tmp_path / "missing")) == []


def test_count_messages_counts_new_and_cur_only(tool, tmp_path):
    box = tmp_path / "mailboxes/example.test/alice/Maildir"
    for sub, n in (("new", 2), ("cur", 3), ("tmp", 4)):
        (box / sub).mkdir(parents=True)
        for i in range(n):
            (box / sub / f"{sub}{i}").write_text("x")
    (box / "dovecot-uidlist").write_text("3 V1 N4\n")
    sub_folder = box / ".Sent/cur"
    sub_folder.mkdir(parents=True)
    (sub_folder / "s0").write_text("x")
    assert tool.count_messages(str(tmp_path)) == 2 + 3 + 1
