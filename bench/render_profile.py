#!/opt/mc-venv/bin/python
"""Where a node's highstate spends its time at N domains, without a lab (issue 14.2).

A masterless salt Caller per node (tests/functional/test_roles_support.make_caller: the repo's
state tree, a copy of the lab pillar plus N generated domains with 10 mailboxes each) times the
pillar compile, ``state.show_highstate`` (every SLS rendered) and the calls given with
``--call``, each under cProfile; the top functions by cumulative time are printed.

    bench/render_profile.py --domains 10000 --node ns1 [--call mailcluster_dns.zones] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pathlib
import pstats
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "functional"), str(REPO / "bench")]

import _converge_pillar  # noqa: E402
from test_roles_support import make_caller, pillar_copy  # noqa: E402

#: --dump PREFIX: each profile also written to PREFIX.<label>.prof (for pstats)
DUMP = None


def profiled(label: str, fun, top: int, out: dict):
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        return fun()
    finally:
        prof.disable()
        out[label] = round(time.perf_counter() - t0, 2)
        buf = io.StringIO()
        if DUMP:
            prof.dump_stats(f"{DUMP}.{label.split()[0]}.prof")
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
        print(f"===== {label}: {out[label]} s", file=sys.stderr)
        print(buf.getvalue(), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--boxes", type=int, default=10)
    parser.add_argument("--node", default="ns1")
    parser.add_argument("--call", action="append", default=[])
    parser.add_argument("--no-highstate", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", help="write each profile to DUMP.<label>.prof")
    args = parser.parse_args()
    global DUMP
    DUMP = args.dump
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mc-profile-"))
    root = pillar_copy(tmp, None)
    _converge_pillar.write(root / "roles_test.sls", args.domains, args.boxes)
    times: dict = {"domains": args.domains, "node": args.node}
    caller = profiled("pillar compile", lambda: make_caller(tmp, args.node, root), args.top, times)
    if not args.no_highstate:
        high = profiled(
            "show_highstate", lambda: caller.cmd("state.show_highstate"), args.top, times
        )
        times["states"] = len(high) if isinstance(high, dict) else high
    for call in args.call:
        fun, *rest = call.split()
        profiled(call, lambda f=fun, r=rest: caller.cmd(f, *r), args.top, times)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
