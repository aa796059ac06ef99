"""Fixtures of the vm tier: two qemu guests (mx1, mx2) with real DRBD 8.4 and OCFS2.

One pair is booted per session (``lab/vm/runner.py``; the guest image is built first when the
cache is cold) and always torn down: by the fixture's finalizer, by ``atexit`` and, should
pytest itself die, by the kernel (the qemus run with ``PR_SET_PDEATHSIG``).

Every test here carries the ``vm`` marker; the long tier also carries ``vmfull`` and runs
only with ``MC_VM_FULL=1``. Without root or qemu the tier skips with the reason.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from vmtools import VMCluster, runner


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    full = os.environ.get("MC_VM_FULL") == "1"
    ok, why = runner.available()
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.vm)
        if not ok:
            item.add_marker(pytest.mark.skip(reason=f"vm tier: {why}"))
        elif item.get_closest_marker("vmfull") and not full:
            item.add_marker(pytest.mark.skip(reason="long vm tier: set MC_VM_FULL=1"))


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
        threads = [threading.Thread(target=cluster.setup_salt, args=(g,)) for g in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
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
