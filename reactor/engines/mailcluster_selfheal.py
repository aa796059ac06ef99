"""
Master engine: run ``mailcluster_failover.reconcile`` every ``interval`` seconds (pillar
``mailcluster:selfheal:reconcile_interval`` when set), and
``mailcluster_failover.touch_minions`` (what the minion watchdog waits for).

Salt 3008.4's master ``schedule`` cannot run runner functions (``copy.copy`` of the runner
function dict recurses until ``RecursionError`` in ``salt/utils/schedule.py``), so the
periodic convergence of the self-healing lives in this engine: nodes that died while the
master was down, hold-downs that expired, DNS drift. Configured in
``reactor/master.d/selfheal.conf``::

    engines_dirs:
      - /srv/mailcluster/reactor/engines
    engines:
      - mailcluster_selfheal:
          interval: 10
"""

import logging
import threading
import time

import salt.loader

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_selfheal"


def __virtual__():
    return __virtualname__


def start(interval=10, first_delay=15):
    """Loop forever: sleep, then reconcile (errors are logged, never fatal)."""
    runners = salt.loader.runner(__opts__)  # noqa: F821 (injected by the loader)
    threading.Thread(target=_touch_loop, args=(runners,), daemon=True).start()
    time.sleep(float(first_delay))
    while True:
        try:
            fun = runners["mailcluster_failover.reconcile"]
            result = fun()
            changed = [r for r in result if r.get("result") not in ("noop", "refused")]
            if changed:
                log.warning("mailcluster_selfheal: reconcile acted: %s", changed)
        except Exception:  # pylint: disable=broad-except
            log.exception("mailcluster_selfheal: reconcile failed")
        time.sleep(_next_in(runners, float(interval)))


def _next_in(runners, default):
    """The pause before the next reconcile, as pillar says (the engine's ``interval`` when
    pillar says nothing or cannot be read)."""
    try:
        return float(runners["mailcluster_failover.reconcile_interval"](default=default))
    except Exception:  # pylint: disable=broad-except
        log.exception("mailcluster_selfheal: reading reconcile_interval failed")
        return default


def _touch_loop(runners):
    """What the minion watchdog listens for (salt/selfheal/watchdog), in its own thread: a
    reconcile that waits for a lock or a promotion must not let healthy minions look deaf.
    The runner says when to call it again (``watchdog:touch_interval``)."""
    while True:
        next_in = 1.0
        try:
            next_in = runners["mailcluster_failover.touch_minions"]()["next_in"]
        except Exception:  # pylint: disable=broad-except
            log.exception("mailcluster_selfheal: touching the minions failed")
        time.sleep(float(next_in))
