"""Runs inside a lab node (Debian's python3, standard library only) for test_secrets_hidden.py.

It never receives a secret: it only samples, reads and appends, and hands the raw bytes back to
the test (base64 in JSON on stdout), which does the matching on the host.

    sample OUT STOP INTERVAL MAXSECS   every INTERVAL s, each new command line (what
                                       `ps -eo args` shows: /proc/PID/cmdline) -> OUT,
                                       until STOP exists or MAXSECS; detaches at once
    offsets                            {path: size} of the regular files under /var/log
    read PATH...                       {path: content} of the files that exist
    append MARK PATH...                appends a comment line "# MARK" to each file
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


def offsets():
    return {p: os.path.getsize(p) for p in _files(LOG_DIR)}


def read(paths):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as fh:
                out[path] = _b64(fh.read())
        except OSError:
            pass
    return out


def append(mark, paths):
    for path in paths:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"\n# {mark}\n")
    return sorted(paths)


def collect(since, samples, before):
    logs = {}
    for path in _files(LOG_DIR):
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
    elif cmd == "append":
        res = append(args[0], args[1:])
    elif cmd == "collect":
        res = collect(args[0], args[1], json.load(sys.stdin))
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
