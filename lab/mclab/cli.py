"""Command line of the lab: `lab/lab COMMAND ...` (see `lab/lab --help`)."""

from __future__ import annotations

import argparse
import json
import sys

from . import util
from .lab import DEFAULT_NODES, Lab

USAGE = """\
lab/lab up [--nodes salt,mx1,...] [--storage shared_path|drbd]
                                    build the base image if missing, boot the nodes, wait for salt;
                                    --storage drbd: mx1, mx2 are qemu guests (DRBD + OCFS2)
lab/lab down                        stop everything, leave no process/mount/netns/cgroup behind
lab/lab status [--json]             nodes, IPs, running or not, minion answering or not
lab/lab salt ARGS...                run `salt ARGS` on the master (e.g. '*' state.apply)
lab/lab salt-run ARGS...            run `salt-run ARGS` on the master
lab/lab run NODE -- CMD...          run a command inside a node
lab/lab kill NODE                   hard crash of a node (all its processes die at once)
lab/lab stop NODE | start NODE      graceful power-off / boot of one node
lab/lab partition NODE_A NODE_B     cut the link between two nodes
lab/lab heal                        restore every cut link
lab/lab build-image                 build (or verify) the cached base image only
lab/lab diagram [--out DIR] [--source]
                                    draw the cluster now: DIR/cluster.svg, cluster.png (DIR: .);
                                    --source: also cluster.dot and cluster.json (the model)
environment: MC_LAB (instance name, default mclab), MC_LAB_SUBNET (default 10.88.0)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab/lab", usage=USAGE, add_help=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up")
    up.add_argument("--nodes", default=",".join(DEFAULT_NODES))
    up.add_argument("--storage", default="shared_path")
    sub.add_parser("down")
    status = sub.add_parser("status")
    status.add_argument("--json", action="store_true")
    for name in ("salt", "salt-run"):
        cmd = sub.add_parser(name)
        cmd.add_argument("args", nargs=argparse.REMAINDER)
    run = sub.add_parser("run")
    run.add_argument("node")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    for name in ("kill", "stop", "start"):
        sub.add_parser(name).add_argument("node")
    part = sub.add_parser("partition")
    part.add_argument("node_a")
    part.add_argument("node_b")
    sub.add_parser("heal")
    sub.add_parser("build-image")
    diagram = sub.add_parser("diagram")
    diagram.add_argument("--out", default=".")
    diagram.add_argument("--source", action="store_true")
    return parser


def status(lab: Lab, as_json: bool) -> int:
    state = lab.load_state()
    if state is None:
        print(json.dumps({"up": False}) if as_json else f"lab '{lab.name}' is down")
        return 0
    rows = []
    answered: set[str] = set()
    master = lab._node("salt")
    if lab.is_running(master):
        ping = ["*", "test.ping", "--out=json", "--static", "-t", str(lab.ping_timeout())]
        proc = lab.salt(ping, capture=True)
        try:
            answered = {k for k, v in json.loads(proc.stdout or "{}").items() if v is True}
        except json.JSONDecodeError:
            answered = set()
    for name in state["nodes"]:
        node = lab._node(name)
        rows.append(
            {
                "node": name,
                "ip": node.ip,
                "running": lab.is_running(node),
                "kind": "qemu" if name in state.get("guests", []) else "nspawn",
                "minion": "up" if name in answered else "down",
            }
        )
    if as_json:
        print(json.dumps({"up": True, "nodes": rows, "partitions": lab.partitions()}))
        return 0
    print(f"lab '{lab.name}' ({lab.subnet}.0/24, host {lab.subnet}.1)")
    print(f"{'NODE':6} {'IP':14} {'KIND':7} {'STATE':8} MINION")
    for row in rows:
        state_word = "running" if row["running"] else "stopped"
        kind = row["kind"]
        print(f"{row['node']:6} {row['ip']:14} {kind:7} {state_word:8} {row['minion']}")
    for a, b in lab.partitions():
        print(f"partition: {a} <-/-> {b}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("salt", "salt-run"):
        # everything after the command is salt's own (argparse would claim `-L`, `-G`, ...)
        rest = argv[1:]
        args = argparse.Namespace(command=argv[0], args=rest[1:] if rest[:1] == ["--"] else rest)
    else:
        args = _parser().parse_args(argv)
    lab = Lab()
    try:
        return _dispatch(lab, args)
    except util.LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(lab: Lab, args) -> int:
    cmd = args.command
    if cmd == "up":
        lab.up([n.strip() for n in args.nodes.split(",") if n.strip()], storage=args.storage)
    elif cmd == "down":
        lab.down()
    elif cmd == "status":
        return status(lab, args.json)
    elif cmd in ("salt", "salt-run"):
        if not args.args:
            raise util.LabError(f"usage: lab/lab {cmd} ARGS... (e.g. lab/lab salt '*' test.ping)")
        return lab.salt(args.args, command=cmd).returncode
    elif cmd == "run":
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not command:
            raise util.LabError("usage: lab/lab run NODE -- CMD...")
        return lab.run(args.node, command).returncode
    elif cmd == "kill":
        lab.kill(args.node)
    elif cmd == "stop":
        lab.stop(args.node)
    elif cmd == "start":
        lab.start(args.node)
    elif cmd == "partition":
        lab.partition(args.node_a, args.node_b)
    elif cmd == "heal":
        lab.heal()
    elif cmd == "build-image":
        from . import image

        util.require_root()
        print(image.ensure_image(util.REPO / "lab/packages.txt"))
    elif cmd == "diagram":
        from pathlib import Path

        from . import diagram

        for path in diagram.draw(lab, Path(args.out), args.source).values():
            print(path)
    return 0
