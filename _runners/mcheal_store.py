# ruff: noqa: F821  (Salt injects __opts__ into loader modules)
"""
Building blocks of :py:mod:`mailcluster_failover` (the self-healing runner): what the runs
keep on the master, in ``<cachedir>/mailcluster_failover/``.

- :py:func:`lock`, :py:func:`dns_lock`: exclusive ``flock`` locks, one per mail node and one
  around every read-modify-write of the DNS records; they work across the reactor's threads,
  the engine's process and ``salt-run``.
- :py:func:`load`, :py:func:`change`, :py:func:`update`, :py:func:`record_withdrawn`: the state
  file ``state.json`` (hold-down times, the last withdrawn set, the DNS stand-in). The DNS is
  the truth; the file only remembers what the DNS cannot say.
- :py:func:`hold_down`: why a node may not change yet.
"""

import contextlib
import errno
import fcntl
import json
import os
import threading
import time

import salt.utils.files

__virtualname__ = "mcheal_store"

#: the state file's read-modify-write in this process (the flock covers other processes)
_STATE_GUARD = threading.Lock()
#: held while the records are read and rewritten: two nodes' runs, or a run and the engine's
#: drift repair, must never compute the withdrawn set from each other's half-applied update
DNS_LOCK = "_dns"


def __virtual__():
    return __virtualname__


def workdir():
    """Building block of mailcluster_failover: ``<cachedir>/mailcluster_failover``, made if
    missing (locks, state file, audit log)."""
    path = os.path.join(__opts__["cachedir"], "mailcluster_failover")
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def lock(node, timeout):
    """Building block of mailcluster_failover: exclusive lock named ``node`` (flock: works
    across threads, processes and salt-run); yields whether it was had within ``timeout``."""
    path = os.path.join(workdir(), f"{node}.lock")
    fh = salt.utils.files.fopen(path, "a+")
    deadline = time.monotonic() + float(timeout)
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        yield True
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def dns_lock(timeout):
    """Building block of mailcluster_failover: the lock held around every read-modify-write
    of the DNS records (:py:func:`lock` named ``DNS_LOCK``)."""
    return lock(DNS_LOCK, timeout)


def _state_path():
    return os.path.join(workdir(), "state.json")


def load():
    """Building block of mailcluster_failover: the state file's content (``{}`` if none)."""
    try:
        with salt.utils.files.fopen(_state_path(), "r") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def change(mutate):
    """Building block of mailcluster_failover: read-modify-write of the state file under a
    flock (threads, the engine and salt-run share it); ``mutate(state)`` changes the dict in
    place. Returns the new state."""
    with _STATE_GUARD:
        path = _state_path()
        guard = salt.utils.files.fopen(path + ".lock", "a+")
        try:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            state = load()
            mutate(state)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
            with salt.utils.files.fopen(tmp, "w") as fh:
                json.dump(state, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        finally:
            fcntl.flock(guard.fileno(), fcntl.LOCK_UN)
            guard.close()
        return state


def update(node, **values):
    """Building block of mailcluster_failover: record per-node metadata (last change for the
    hold-down; the DNS is the truth)."""
    return change(lambda state: state.setdefault(node, {}).update(values))


def record_withdrawn(withdrawn):
    """Building block of mailcluster_failover: the last withdrawn set, for when the DNS
    primary cannot be read."""
    return change(lambda state: state.__setitem__("_withdrawn", sorted(withdrawn)))


def hold_down(ctx, node):
    """Building block of mailcluster_failover: why ``node`` may not change yet (``hold_down``
    seconds since its last change), or None."""
    last = (load().get(node) or {}).get("changed")
    left = float(ctx.settings["hold_down"]) - (time.time() - float(last)) if last else 0.0
    if left <= 0:
        return None
    return f"hold-down: {left:.1f} s left before {node} may change again"
