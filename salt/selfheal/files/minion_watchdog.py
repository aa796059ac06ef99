"""
mailcluster minion watchdog: restart a salt-minion that no longer hears its master.

Managed by Salt (salt/selfheal/watchdog); run by mailcluster-minion-watchdog.timer with the
minion's own Python and the path of its JSON settings as the only argument.

Why: after a master restart, Salt 3008.4's TCP transport can leave a minion connected but
deaf. The minion sends its id on the new publish connection encrypted with a stale AES key,
the master logs "Exception parsing response ... message authentication failed", never learns
which minion sits on that connection, and sends it no targeted publication again (glob and
list targets are matched on the master with the tcp transport). The minion itself sees
nothing wrong, and the self-healing can neither verify nor repair through it.

How: the master's engine (reactor/engines/mailcluster_selfheal.py) touches ``heard_file``
on every node every ``touch_interval`` seconds through an ordinary publication. When that
file is older than ``deaf_after`` while the master answers on its request port, the minion
is restarted (at most once per ``backoff``; a master back from an outage first gets
``deaf_after`` seconds to touch it). A node that never got a touch is not armed: a
master without the engine never makes its minions restart.
"""

import json
import os
import socket
import subprocess
import sys
import time


def decide(now, heard_at, minion_up_for, last_restart, master_up_for, settings):
    """
    Whether to restart the minion, and why (a pure function of what was observed).

    ``heard_at``: mtime of the heard file (None: never touched); ``minion_up_for``: seconds
    the salt-minion unit has been active (None: not active); ``last_restart``: when this
    watchdog last restarted it (None: never); ``master_up_for``: seconds the master's request
    port has accepted connections at every check (None: not now). A master back from an
    outage gets ``deaf_after`` seconds to touch the file before anything is restarted.
    """
    deaf_after = float(settings["deaf_after"])
    if heard_at is None:
        return False, "not armed: no publication from the master's engine ever reached this node"
    silent = now - heard_at
    if silent <= deaf_after:
        return False, f"the master was heard {silent:.0f} s ago"
    if minion_up_for is None:
        return False, "salt-minion is not active (left to systemd and the administrator)"
    if minion_up_for <= deaf_after:
        return False, f"salt-minion started {minion_up_for:.0f} s ago"
    if master_up_for is None:
        return False, f"nothing heard for {silent:.0f} s, but the master does not answer either"
    if master_up_for <= deaf_after:
        return False, f"the master answers again for {master_up_for:.0f} s only"
    if last_restart is not None and now - last_restart < float(settings["backoff"]):
        return False, f"restarted it {now - last_restart:.0f} s ago (backoff)"
    return True, f"nothing heard from the master for {silent:.0f} s while it answers"


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _minion_up_for(unit):
    out = subprocess.run(
        ["systemctl", "show", unit, "-p", "ActiveState", "-p", "ActiveEnterTimestampMonotonic"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if props.get("ActiveState") != "active":
        return None
    # systemd's monotonic timestamps and time.monotonic() read the same clock
    return time.monotonic() - int(props.get("ActiveEnterTimestampMonotonic") or 0) / 1e6


def _answers(host, port, timeout=2.0):
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _save(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def main(argv):
    settings = _load(argv[1])
    state = _load(settings["state_file"])
    now = time.time()
    if _answers(settings["master"], settings["master_port"]):
        state.setdefault("master_answers_since", now)
    else:
        state.pop("master_answers_since", None)
    since = state.get("master_answers_since")
    restart, why = decide(
        now,
        _mtime(settings["heard_file"]),
        _minion_up_for(settings["unit"]),
        state.get("last_restart"),
        None if since is None else now - since,
        settings,
    )
    if restart:
        why = f"{why}: restarting {settings['unit']}"
        state.update(last_restart=now, reason=why)
    _save(settings["state_file"], state)
    print(why)
    if not restart:
        return 0
    return subprocess.run(["systemctl", "restart", "--no-block", settings["unit"]]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
