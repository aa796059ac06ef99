"""Runs inside a lab node (Debian's python3, standard library only) for test_secrets_hidden.py.

It gets secrets only on stdin (scramble), never as an argument; what it reads it hands back to
the test as raw bytes (base64 in JSON on stdout), which does the matching on the host.

    sample OUT STOP INTERVAL MAXSECS   every INTERVAL s, each new command line (what
                                       `ps -eo args` shows: /proc/PID/cmdline) -> OUT,
                                       until STOP exists or MAXSECS; detaches at once
    offsets                            {path: size} of the regular files under /var/log and
                                       of MariaDB's binary and relay logs
    read PATH...                       {path: content} of the files that exist
    scramble MARK PATH...              on stdin a JSON list of strings: each one in each file
                                       is replaced by MARK (a diff of the file's next rewrite
                                       then holds the line with the real value)
    collect SINCE SAMPLES              on stdin the offsets JSON; prints the bytes the logs
                                       got after it, the journal since SINCE (epoch s), the
                                       master's job cache files changed since then, SAMPLES
"""

import base64
import json
import os
import subprocess
import sys
import time

LOG_DIR = "/var/log"
#: MariaDB's binary and relay logs: the SQL statements it replicates, user changes included
SQL_LOG_DIR = "/var/lib/mysql"
JOB_DIRS = ("/var/cache/salt/master/jobs", "/var/cache/salt/master/mailcluster_failover")


def _b64(data):
    return base64.b64encode(data).decode()


def _cmdlines():
    seen = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        if raw:
            seen.add(raw.rstrip(b"\0").replace(b"\0", b" "))
    return seen


def sample(out, stop, interval, maxsecs):
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    deadline = time.monotonic() + float(maxsecs)
    known = set()
    with open(out, "ab", buffering=0) as fh:
        while time.monotonic() < deadline:
            new = _cmdlines() - known
            for line in sorted(new):
                fh.write(line + b"\n")
            known |= new
            if os.path.exists(stop):
                break
            time.sleep(float(interval))
    os._exit(0)


def _files(top):
    for root, _dirs, names in os.walk(top):
        if root.startswith(os.path.join(LOG_DIR, "journal")):
            continue  # binary: read through journalctl
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def _sql_logs():
    if not os.path.isdir(SQL_LOG_DIR):
        return
    for name in sorted(os.listdir(SQL_LOG_DIR)):
        stem, _, ext = name.rpartition(".")
        if ext.isdigit() and (stem.endswith("-bin") or stem.endswith("relay-bin")):
            yield os.path.join(SQL_LOG_DIR, name)


def _logs():
    yield from _files(LOG_DIR)
    yield from _sql_logs()


def offsets():
    return {p: os.path.getsize(p) for p in _logs()}


def read(paths):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as fh:
                out[path] = _b64(fh.read())
        except OSError:
            pass
    return out


def scramble(mark, paths, values):
    done = []
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        new = data
        for value in values:
            new = new.replace(value.encode(), mark.encode())
        if new != data:
            with open(path, "wb") as fh:
                fh.write(new)
            done.append(path)
    return sorted(done)


def collect(since, samples, before):
    logs = {}
    for path in _logs():
        start = before.get(path, 0)
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < start:
                start = 0  # rotated meanwhile: all of it is new
            fh.seek(start)
            logs[path] = _b64(fh.read())
    jobs = {}
    for top in JOB_DIRS:
        for path in _files(top) if os.path.isdir(top) else ():
            if os.path.getmtime(path) >= float(since):
                with open(path, "rb") as fh:
                    jobs[path] = _b64(fh.read())
    journal = subprocess.run(
        ["journalctl", "--no-pager", "-o", "short-iso", "--since", f"@{int(float(since))}"],
        capture_output=True,
        check=False,
    ).stdout
    try:
        with open(samples, "rb") as fh:
            ps = fh.read()
    except OSError:
        ps = b""
    return {"logs": logs, "jobs": jobs, "journal": _b64(journal), "ps": _b64(ps)}


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "sample":
        sample(*args)
        return
    if cmd == "offsets":
        res = offsets()
    elif cmd == "read":
        res = read(args)
    elif cmd == "scramble":
        res = scramble(args[0], args[1:], json.load(sys.stdin))
    elif cmd == "collect":
        res = collect(args[0], args[1], json.load(sys.stdin))
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
