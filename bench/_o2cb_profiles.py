"""The o2cb (and DRBD keep-alive) timing profiles the storage benchmarks compare: o2cb's own
defaults, and the shortest setting that keeps a margin against self-fencing. One place for
bench/vm_bench.py (a bare storage pair) and bench/seed_bench.py (the seed's whole cluster)."""

from __future__ import annotations

PROFILES = {
    # o2cb's own defaults (also the role's)
    "default": {
        "dead_threshold": 31,
        "idle_timeout_ms": 30000,
        "keepalive_delay_ms": 2000,
        "reconnect_delay_ms": 2000,
    },
    # shortest setting that keeps a margin against self-fencing (threshold >= 11)
    "short": {
        "dead_threshold": 11,
        "idle_timeout_ms": 5000,
        "keepalive_delay_ms": 1000,
        "reconnect_delay_ms": 2000,
    },
}
#: DRBD keep-alive per profile: the survivor's writes (o2cb's disk heartbeat too) block until
#: DRBD notices the dead peer, so it must be well inside o2cb's heartbeat window.
DRBD = {"default": {}, "short": {"ping_int": 3}}


def storage_pillar(name: str) -> dict:
    """The storage pillar that selects profile ``name``."""
    return {"storage": {"ocfs2": {"timeouts": PROFILES[name]}, "drbd": DRBD.get(name, {})}}
