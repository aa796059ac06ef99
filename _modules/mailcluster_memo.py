"""
One computation per job over the same pillar (issue 14.2): at 10,000 domains every role's
``map.jinja`` checking the pillar, and every role asking for the zones or the ACME names, cost
seconds each time, dozens of times per highstate.

:py:func:`once` keeps a result in ``__context__`` (one job's loader) under the *identity* of
the objects it was computed from, not their contents: hashing a 100,000-mailbox pillar to
recognise it took longer than some of the computations it saved. Within a job the pillar is
not changed in place (a ``pillar=`` override is a new dict), so the same objects mean the same
inputs; the memo holds a reference to each, so an id cannot be reused by another object while
its entry lives. A result is shared: callers must not change it.
"""

__virtualname__ = "mailcluster_memo"

#: entries kept per name (a long-lived loader, the master's engine, sees new pillars)
KEEP = 4


def __virtual__():
    return __virtualname__


def once(name, inputs, compute, extra=None):
    """
    ``compute()``, computed once per job for the same ``inputs`` (a list of objects compared
    by identity: the pillar's dicts) and ``extra`` (hashable, compared by value: a node name,
    a withdrawn set). Python callers only (``compute`` is a function).

    CLI Example:

    .. code-block:: bash

        # from Python only: __salt__["mailcluster_memo.once"]("zones", [mc], lambda: ...)
        salt-call mailcluster_memo.stats
    """
    store = __context__.setdefault("mailcluster_memo", {}).setdefault(name, [])
    ids = tuple(id(obj) for obj in inputs)
    for entry_ids, _refs, entry_extra, result in store:
        if entry_ids == ids and entry_extra == extra:
            return result
    result = compute()
    store.append((ids, list(inputs), extra, result))
    del store[:-KEEP]
    return result


def per_pillar(name, pillar, compute, extra=None):
    """
    :py:func:`once` for a computation over a whole ``pillar`` dict: its inputs are the
    pillar's top-level values (a new dict over the same values is the same pillar).

    CLI Example:

    .. code-block:: bash

        # from Python only: __salt__["mailcluster_memo.per_pillar"]("check", pillar, fun)
        salt-call mailcluster_memo.stats
    """
    keys = sorted(pillar)
    return once(name, [pillar[k] for k in keys], compute, extra=(tuple(keys), extra))


def stats():
    """
    ``{name: entries}``: what this loader's memo holds (a fresh ``salt-call`` holds nothing).

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster_memo.stats
    """
    return {name: len(v) for name, v in (__context__.get("mailcluster_memo") or {}).items()}
