"""The minion watchdog's decision (salt/selfheal/files/minion_watchdog.py): when a salt-minion
that no longer hears its master is restarted, and every reason it is left alone. The timer,
the restart and the master's touches run for real in tests/lab/test_selfheal_watchdog.py."""

import importlib.util
import json

import pytest
from mc_unit_helpers import REPO

SCRIPT = REPO / "salt" / "selfheal" / "files" / "minion_watchdog.py"
SETTINGS = {"deaf_after": 120, "backoff": 900}
NOW = 1_000_000.0


@pytest.fixture(scope="module")
def watchdog():
    spec = importlib.util.spec_from_file_location("minion_watchdog", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _decide(watchdog, heard_ago=300, minion_up=3600, restarted_ago=None, master_up=600):
    return watchdog.decide(
        NOW,
        None if heard_ago is None else NOW - heard_ago,
        minion_up,
        None if restarted_ago is None else NOW - restarted_ago,
        master_up,
        SETTINGS,
    )


def test_a_deaf_minion_of_a_live_master_is_restarted(watchdog):
    restart, why = _decide(watchdog)
    assert restart is True
    assert why == "nothing heard from the master for 300 s while it answers"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"heard_ago": None}, "not armed"),
        ({"heard_ago": 100}, "the master was heard 100 s ago"),
        ({"minion_up": None}, "salt-minion is not active"),
        ({"minion_up": 60}, "salt-minion started 60 s ago"),
        ({"master_up": None}, "but the master does not answer either"),
        ({"master_up": 30}, "the master answers again for 30 s only"),
        ({"restarted_ago": 400}, "restarted it 400 s ago (backoff)"),
    ],
)
def test_left_alone_and_why(watchdog, case, expected):
    restart, why = _decide(watchdog, **case)
    assert restart is False
    assert expected in why


def test_a_restart_past_the_backoff_is_allowed_again(watchdog):
    assert _decide(watchdog, restarted_ago=901)[0] is True


def test_the_state_file_remembers_the_restart_and_when_the_master_came_back(
    watchdog, tmp_path, monkeypatch
):
    """main() with a master that answers (a listening socket on loopback) and a heard file
    older than deaf_after: the restart is recorded before systemctl is asked for it."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    heard = tmp_path / "heard"
    heard.write_text("")
    settings = {
        "heard_file": str(heard),
        "deaf_after": 0,
        "backoff": 900,
        "state_file": str(tmp_path / "state"),
        "unit": "salt-minion",
        "master": "127.0.0.1",
        "master_port": listener.getsockname()[1],
    }
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(settings))
    ran = []
    monkeypatch.setattr(watchdog, "_minion_up_for", lambda unit: 3600.0)
    monkeypatch.setattr(watchdog.subprocess, "run", lambda cmd, **kw: ran.append(cmd) or _Done())
    try:
        # first check: the master is seen answering now, for 0 s: not yet
        assert watchdog.main(["x", str(conf)]) == 0
        state = json.loads((tmp_path / "state").read_text())
        assert "last_restart" not in state and "master_answers_since" in state
        assert ran == []
        # the master has answered since an earlier check: restart
        state["master_answers_since"] -= 10
        (tmp_path / "state").write_text(json.dumps(state))
        assert watchdog.main(["x", str(conf)]) == 0
        state = json.loads((tmp_path / "state").read_text())
        assert state["reason"].endswith("restarting salt-minion")
        assert ran == [["systemctl", "restart", "--no-block", "salt-minion"]]
    finally:
        listener.close()


class _Done:
    returncode = 0
