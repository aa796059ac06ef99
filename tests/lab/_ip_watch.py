"""Sample which node holds which service IP, every 0.1 s, inside the nodes themselves.

A sampler runs `ip -o -4 addr` in a shell loop in each node (through `lab/lab run`) and prints
`<unix time> <addresses>`; the nodes share the host's clock, so the samples of both nodes
line up. :py:func:`windows` turns them into the stretches where an address was on two nodes
or on none.
"""

from __future__ import annotations

import bisect
import os
import subprocess
import threading

from conftest import LAB_CLI

LOOP = (
    'while :; do echo "$(date +%s.%N) $(ip -o -4 addr show | awk \'{print $4}\' | tr "\\n" " ")"; '
    "sleep 0.1; done"
)


class IpWatch:
    def __init__(self, lab, nodes=("mx1", "mx2")):
        env = dict(os.environ, MC_LAB=lab.lab.name, MC_LAB_SUBNET=lab.lab.subnet)
        self.samples = {n: [] for n in nodes}
        self._procs = {}
        for node in nodes:
            proc = subprocess.Popen(
                [LAB_CLI, "run", node, "--", "sh", "-c", LOOP],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            self._procs[node] = proc
            threading.Thread(target=self._read, args=(node, proc), daemon=True).start()

    def _read(self, node, proc):
        for line in proc.stdout:
            stamp, _, rest = line.partition(" ")
            try:
                t = float(stamp)
            except ValueError:
                continue
            addrs = {a.split("/")[0] for a in rest.split()}
            self.samples[node].append((t, addrs))

    def stop(self, lab):
        for node, proc in self._procs.items():
            proc.terminate()
            lab.run(node, "pkill", "-f", "ip -o -4 addr show")

    def holders(self, ip, t):
        """Nodes whose last sample at or before ``t`` shows ``ip``."""
        out = set()
        for node, samples in self.samples.items():
            i = bisect.bisect_right([ts for ts, _ in samples], t)
            if i and ip in samples[i - 1][1]:
                out.add(node)
        return out

    def windows(self, ip, since, until):
        """``(twice, none)``: the longest stretches (s) in [since, until] during which ``ip``
        was on both nodes, or on neither, by the union of both nodes' sample times."""
        times = sorted(
            ts for samples in self.samples.values() for ts, _ in samples if since <= ts <= until
        )
        longest = {"twice": 0.0, "none": 0.0}
        start = {"twice": None, "none": None}
        for t in times:
            count = len(self.holders(ip, t))
            for kind, on in (("twice", count > 1), ("none", count == 0)):
                if on and start[kind] is None:
                    start[kind] = t
                elif not on and start[kind] is not None:
                    longest[kind] = max(longest[kind], t - start[kind])
                    start[kind] = None
        for kind, t0 in start.items():
            if t0 is not None and times:
                longest[kind] = max(longest[kind], times[-1] - t0)
        return round(longest["twice"], 2), round(longest["none"], 2)
