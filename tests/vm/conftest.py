"""Fixtures of the vm tier: two qemu guests (mx1, mx2) with real DRBD 8.4 and OCFS2.

One pair is booted per session (``lab/vm/runner.py``; the guest image is built first when the
cache is cold) and always torn down: by the fixture's finalizer, by ``atexit`` and, should
pytest itself die, by the kernel (the qemus run with ``PR_SET_PDEATHSIG``).

Every test here carries the ``vm`` marker; the long tier also carries ``vmfull`` and runs
only with ``MC_VM_FULL=1``. Without root or qemu the tier skips with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from vmtools import BAD_RES, ERRORS, READS, VMCluster, at_once, runner


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    ok, why = runner.available()
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.vm)
        if not ok:
            item.add_marker(pytest.mark.skip(reason=f"vm tier: {why}"))


@pytest.fixture(scope="session")
def vm():
    ok, why = runner.available()
    if not ok:
        pytest.skip(f"vm tier: {why}")
    t0 = time.monotonic()
    image = runner.build_image.ensure_image()
    build_s = round(time.monotonic() - t0, 1)
    pair = runner.Pair()
    try:
        boot = pair.start()
        cluster = VMCluster(pair)
        cluster.timings.update({"image_s": build_s, **{f"boot_{k}": v for k, v in boot.items()}})
        at_once({g.name: (lambda g=g: cluster.setup_salt(g)) for g in pair})
        print(f"\nvm pair {pair.workdir} image {image.name} timings {cluster.timings}")
        yield cluster
    finally:
        for g in pair:
            if g.alive():
                continue
            print(f"\n{g.name} console tail:\n{g.console_tail()}")
        pair.close()


@pytest.fixture(scope="session")
def storage_applied(vm):
    """The storage role applied on both guests (the first apply), with its returns."""
    return vm.apply_both()


@pytest.fixture(scope="session")
def reads(vm, storage_applied):
    """Every read-only check of the short tier, taken once on the converged pair: one batch
    per guest, both guests at once (``{guest: {label: {"ok", "ret", "error"}}}``; labels from
    vmtools.READS, and on mx1 also vmtools.ERRORS). Eight separate batches, one guest after
    the other, cost about 7 minutes of TCG start-up."""
    vm["mx1"].run(
        f"printf 'resource bad {{\\n  net {{ protocol Q; }}\\n}}\\n' > {BAD_RES}", check=True
    )
    items = {name: dict(READS) for name in vm.names}
    items["mx1"].update(ERRORS)
    out = vm.calls_each({name: list(calls.values()) for name, calls in items.items()})
    return {name: dict(zip(items[name], out[name], strict=True)) for name in items}
