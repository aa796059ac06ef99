#!/usr/bin/python3
"""mailcluster-backup: the backup sets of the mail cluster (installed by Salt, backup role).

  mailcluster-backup run                   on the target: take a set, then prune (the timer's job)
  mailcluster-backup list                  on the target: the complete sets, oldest first (JSON)
  mailcluster-backup restore-db [SET]      on the DB primary: load SET's dump (default: latest)
  mailcluster-backup restore-maildirs [SET] [--force]
                                           on a store node: copy SET's Maildirs back

A set is <directory>/<UTC time>/ with db/<database>.sql.gz, vmail/ (the shared store, files
hard-linked to the previous set where unchanged) and meta.json (sources, GTID, counts). It is
built as <name>.partial and renamed when complete, so a set that exists is whole.

Settings come from config.json beside the secrets (rsync.secret, my.cnf: mode 0600) in the
config directory; secrets are passed to rsync and mariadb by file, never as arguments.
"""

import argparse
import datetime
import fcntl
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CONFIG_DIR = "/etc/mailcluster/backup"
SET_RE = re.compile(r"^\d{8}T\d{6}Z$")
# rsync exit codes that still mean a usable copy of a live Maildir store: 24 = files vanished
# while copied (dovecot moved new/ -> cur/ or expunged)
RSYNC_OK = (0, 24)


class Failure(Exception):
    """A step failed; the message says which and why."""


def log(msg):
    print(f"mailcluster-backup: {msg}", flush=True)


def load_config(config_dir):
    with open(os.path.join(config_dir, "config.json")) as fh:
        conf = json.load(fh)
    conf["my_cnf"] = os.path.join(config_dir, "my.cnf")
    conf["rsync_secret"] = os.path.join(config_dir, "rsync.secret")
    return conf


def run(cmd, **kw):
    """Run ``cmd`` (a list); raise Failure with its stderr unless the exit code is allowed."""
    ok = kw.pop("ok", (0,))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode not in ok:
        raise Failure(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return proc


def sql(conf, host, query):
    """One query on ``host`` as the backup user: rows as lists of strings."""
    proc = run([
        "mariadb", f"--defaults-extra-file={conf['my_cnf']}", "-h", host,
        "-P", str(conf["db"]["port"]), "--connect-timeout=5", "-N", "-B", "-e", query,
    ])  # fmt: skip
    return [line.split("\t") for line in proc.stdout.splitlines()]


def rsync_url(conf, host, module, path=""):
    return f"rsync://{conf['rsync']['user']}@{host}:{conf['rsync']['port']}/{module}/{path}"


def rsync(conf, src, dest, extra=()):
    cmd = [
        "rsync", "-a", "--numeric-ids", "--hard-links", "--timeout=60", "--contimeout=10",
        f"--password-file={conf['rsync_secret']}", *extra, src, dest,
    ]  # fmt: skip
    if conf["rsync"].get("bwlimit"):
        cmd.insert(1, f"--bwlimit={conf['rsync']['bwlimit']}")
    return run(cmd, ok=RSYNC_OK)


# --------------------------------------------------------------------------- the target
def complete_sets(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if SET_RE.match(n))


def pick_db_source(conf):
    """The server to dump from and why: a replica that has caught up with the primary's
    position of now, else the primary. Dumping from the replica keeps the long consistent
    read (--single-transaction) off the server taking the writes."""
    primary = conf["db_primary"][0]["ip"] if conf["db_primary"] else None
    position = None
    if primary:
        try:
            position = sql(conf, primary, "SELECT @@global.gtid_binlog_pos")[0][0]
        except Failure as exc:
            log(f"primary {primary} not readable ({exc}); trying the replicas as they are")
    if conf["db"]["prefer_replica"]:
        for rep in conf["db_replicas"]:
            try:
                if position is None:
                    sql(conf, rep["ip"], "SELECT 1")
                    return rep, "replica (primary unreachable: its last applied position)"
                wait = int(conf["db"]["replica_wait"])
                got = sql(conf, rep["ip"], f"SELECT MASTER_GTID_WAIT('{position}', {wait})")
                if got and got[0][0] == "0":
                    return rep, f"replica, caught up with the primary's {position!r}"
                log(f"replica {rep['name']} did not reach {position!r} in {wait} s")
            except Failure as exc:
                log(f"replica {rep['name']} not usable: {exc}")
    if position is not None:
        return conf["db_primary"][0], "primary"
    raise Failure("no DB server answered (primary and replicas)")


def dump_databases(conf, work, meta):
    source, why = pick_db_source(conf)
    present = {row[0] for row in sql(conf, source["ip"], "SHOW DATABASES")}
    wanted = [d for d in conf["include"]["databases"] if d in present]
    missing = [d for d in conf["include"]["databases"] if d not in present]
    if not wanted:
        raise Failure(f"none of the databases {conf['include']['databases']} on {source['name']}")
    os.makedirs(os.path.join(work, "db"))
    gtid = sql(conf, source["ip"], "SELECT @@global.gtid_current_pos")[0][0]
    for database in wanted:
        path = os.path.join(work, "db", f"{database}.sql.gz")
        cmd = [
            "mariadb-dump", f"--defaults-extra-file={conf['my_cnf']}", "-h", source["ip"],
            "-P", str(conf["db"]["port"]), "--single-transaction", "--quick", "--triggers",
            "--no-tablespaces", "--add-drop-database", "--databases", database,
        ]  # fmt: skip
        with gzip.open(path, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            shutil.copyfileobj(proc.stdout, out)
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0:
                raise Failure(f"mariadb-dump {database} on {source['name']}: {err.strip()}")
    meta["db"] = {
        "source": source["name"],
        "why": why,
        "gtid": gtid,
        "databases": wanted,
        "missing": missing,
    }
    log(f"dumped {', '.join(wanted)} from {source['name']} ({why})")


def count_messages(root):
    """Files in every Maildir's new/ and cur/ below ``root`` (one file per message)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            total += len(files)
    return total


def pull_maildirs(conf, work, previous, meta):
    dest = os.path.join(work, "vmail") + "/"
    extra = ["--delete"]
    if previous:
        # unchanged files become hard links to the previous set: each set is complete, and
        # costs only what changed
        extra.append(f"--link-dest={os.path.join(conf['target']['directory'], previous, 'vmail')}")
    errors = []
    for node in conf["store_nodes"]:
        src = rsync_url(conf, node["ip"], conf["rsync"]["store_module"])
        try:
            proc = rsync(conf, src, dest, extra)
        except Failure as exc:
            errors.append(f"{node['name']}: {exc}")
            log(f"store node {node['name']} failed, trying the next one: {exc}")
            continue
        meta["maildirs"] = {
            "source": node["name"],
            "rsync_exit": proc.returncode,
            "messages": count_messages(dest),
            "linked_to": previous,
        }
        log(f"pulled the store from {node['name']}: {meta['maildirs']['messages']} messages")
        return
    raise Failure("no store node could be copied: " + "; ".join(errors))


def prune(directory, keep):
    sets = complete_sets(directory)
    gone = sets[: max(len(sets) - keep, 0)]
    for name in gone:
        shutil.rmtree(os.path.join(directory, name))
    # a .partial left by a killed run (the lock is held: nobody is building it)
    for name in os.listdir(directory):
        if name.endswith(".partial"):
            shutil.rmtree(os.path.join(directory, name))
            gone.append(name)
    return gone


def new_set_name(directory):
    while True:
        name = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        if not os.path.exists(os.path.join(directory, name)):
            return name
        time.sleep(1)


def cmd_run(conf, _args):
    directory = conf["target"]["directory"]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = (complete_sets(directory) or [None])[-1]
        name = new_set_name(directory)
        work = os.path.join(directory, name + ".partial")
        os.makedirs(work, mode=0o700)
        started = time.time()
        meta = {"name": name, "started": started}
        if conf["include"]["databases"]:
            dump_databases(conf, work, meta)
        if conf["include"]["maildirs"]:
            pull_maildirs(conf, work, previous, meta)
        meta["seconds"] = round(time.time() - started, 1)
        with open(os.path.join(work, "meta.json"), "w") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True)
        os.rename(work, os.path.join(directory, name))
        gone = prune(directory, int(conf["retention"]))
        log(f"set {name} complete in {meta['seconds']} s; pruned: {', '.join(gone) or 'none'}")


def cmd_list(conf, _args):
    directory = conf["target"]["directory"]
    out = []
    for name in complete_sets(directory):
        try:
            with open(os.path.join(directory, name, "meta.json")) as fh:
                out.append(json.load(fh))
        except (OSError, ValueError) as exc:
            out.append({"name": name, "error": str(exc)})
    print(json.dumps(out, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- restoring
def remote_sets(conf):
    url = rsync_url(conf, conf["target"]["ip"], conf["rsync"]["sets_module"])
    proc = run(
        ["rsync", "--list-only", "--contimeout=10", f"--password-file={conf['rsync_secret']}", url]
    )
    names = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip()]
    return sorted(n for n in names if SET_RE.match(n))


def resolve_set(conf, wanted):
    sets = remote_sets(conf)
    if not sets:
        raise Failure(f"no backup set on {conf['target']['node']}")
    if wanted in (None, "", "latest"):
        return sets[-1]
    if wanted not in sets:
        raise Failure(f"no set {wanted!r} on {conf['target']['node']} (sets: {', '.join(sets)})")
    return wanted


def cmd_restore_db(conf, args):
    # root over the local socket: this runs on the primary, whose replicas follow by replication
    read_only = run(["mariadb", "-N", "-B", "-e", "SELECT @@global.read_only"]).stdout.strip()
    if read_only != "0":
        raise Failure("this MariaDB is read-only (a replica): restore on the DB primary")
    name = resolve_set(conf, args.set)
    with tempfile.TemporaryDirectory(prefix="mc-restore-") as tmp:
        src = rsync_url(conf, conf["target"]["ip"], conf["rsync"]["sets_module"], f"{name}/db/")
        rsync(conf, src, tmp + "/")
        dumps = sorted(f for f in os.listdir(tmp) if f.endswith(".sql.gz"))
        if not dumps:
            raise Failure(f"set {name} holds no database dump")
        for dump in dumps:
            # decompressed through a pipe (a gzip file object's fileno() is the raw file)
            proc = subprocess.Popen(
                ["mariadb"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            with gzip.open(os.path.join(tmp, dump), "rb") as fh:
                shutil.copyfileobj(fh, proc.stdin)
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace").strip()
            if proc.wait() != 0:
                raise Failure(f"loading {dump}: {err}")
            log(f"loaded {dump} of set {name}")
    print(json.dumps({"set": name, "databases": [d[: -len(".sql.gz")] for d in dumps]}))


def cmd_restore_maildirs(conf, args):
    me = conf["node"]
    first = conf["store_nodes"][0]["name"] if conf["store_nodes"] else None
    if me != first and not args.force:
        # the store is shared: one node copies it back (--force on another when it is down)
        print(json.dumps({"skipped": f"{first} restores the shared store (--force overrides)"}))
        return
    store = conf["store_path"]
    if conf.get("store_mount") and run(["mountpoint", "-q", store], ok=(0, 1, 32)).returncode:
        raise Failure(f"{store} is not mounted: not restoring into the node's own disk")
    name = resolve_set(conf, args.set)
    src = rsync_url(conf, conf["target"]["ip"], conf["rsync"]["sets_module"], f"{name}/vmail/")
    # no --delete: mail delivered since the loss stays next to what comes back
    rsync(conf, src, store.rstrip("/") + "/")
    messages = count_messages(store)
    log(f"Maildirs of set {name} copied back to {store} ({messages} messages there now)")
    print(json.dumps({"set": name, "messages": messages}))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mailcluster-backup", description=__doc__.split("\n")[0])
    parser.add_argument("--config-dir", default=CONFIG_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="take a set now and prune old ones (on the target)")
    sub.add_parser("list", help="complete sets on the target, oldest first")
    p_db = sub.add_parser("restore-db", help="load a set's dumps (on the DB primary)")
    p_db.add_argument("set", nargs="?", default="latest")
    p_md = sub.add_parser("restore-maildirs", help="copy a set's Maildirs back (store node)")
    p_md.add_argument("set", nargs="?", default="latest")
    p_md.add_argument("--force", action="store_true", help="restore from this store node")
    args = parser.parse_args(argv)
    conf = load_config(args.config_dir)
    handler = {
        "run": cmd_run,
        "list": cmd_list,
        "restore-db": cmd_restore_db,
        "restore-maildirs": cmd_restore_maildirs,
    }[args.command]
    try:
        handler(conf, args)
    except Failure as exc:
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
