"""Many mail domains in the lab for a while: a pillar file ``pillar/scale_test.sls`` (listed in
pillar/top.sls, not in git), the dns role's zones applied on ns1 and ns2, both undone after.
Used by tests/lab/test_selfheal_failover.py and bench/failover_bench.py (issue 14)."""

from __future__ import annotations

import contextlib
import pathlib
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PILLAR_FILE = REPO / "pillar" / "scale_test.sls"
#: where the master keeps the DKIM keys its ext_pillar makes (_pillar/mailcluster_dkim.py)
DKIM_DIR = "/var/lib/salt/mailcluster/dkim"
SUFFIX = "scale.test"


def names(count: int) -> list[str]:
    return [f"d{i:05d}.{SUFFIX}" for i in range(count)]


def write(count: int) -> list[str]:
    """The pillar file with ``count`` domains without mailboxes."""
    if PILLAR_FILE.exists():
        raise RuntimeError(f"{PILLAR_FILE} exists (another run's?): not touching it")
    domains = names(count)
    body = {"mailcluster": {"domains": {d: {"description": "scale"} for d in domains}}}
    PILLAR_FILE.write_text(
        "# written by tests/lab/_scale_pillar.py for a scale run; removed afterwards\n"
        + yaml.safe_dump(body, default_flow_style=False)
    )
    return domains


def seed_dkim(lab, domains: list[str]) -> None:
    """One DKIM key for every scale domain, copied from example.test's (the master's
    ext_pillar would make one 2048-bit RSA key per domain: minutes at 10,000, and not what
    a scale run measures; the pillar still reads one key file per domain)."""
    script = (
        f"cd {DKIM_DIR} && src=$(ls example.test/*.key | head -1) && sel=$(basename $src .key)"
        f" && for d in $(cat); do mkdir -p $d && cp -p $src $d/ && cp -p example.test/$sel.txt $d/;"
        " done"
    )
    proc = lab.lab.run(
        "salt", ["sh", "-c", script], capture=True, timeout=600, input="\n".join(domains)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"seeding DKIM keys failed: {proc.stderr}")


def apply_dns(lab, timeout: float = 1800) -> float:
    """The dns role's zones: ``dns.primary`` on ns1, then ``dns.secondary`` on ns2 (the
    master's pillar rendered for each); seconds."""
    t0 = time.monotonic()
    for node, sls in (("ns1", "dns.primary"), ("ns2", "dns.secondary")):
        proc = lab.salt(node, "state.apply", sls, "--out=json", "--static", "--timeout=1800",
                        timeout=timeout)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"{sls} on {node}: {proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return time.monotonic() - t0


def remove(lab) -> None:
    """The pillar file and the seeded keys gone, the dns role applied again."""
    PILLAR_FILE.unlink(missing_ok=True)
    lab.lab.run("salt", ["sh", "-c", f"rm -rf {DKIM_DIR}/*.{SUFFIX}"], capture=True, timeout=600)
    apply_dns(lab)


@contextlib.contextmanager
def scale_domains(lab, count: int):
    """``count`` domains served by ns1 and ns2 for the ``with`` block."""
    domains = write(count)
    try:
        seed_dkim(lab, domains)
        apply_dns(lab)
        yield domains
    finally:
        remove(lab)
