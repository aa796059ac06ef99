"""
The state skeleton shared by the ``drbd``, ``o2cb`` and ``heartbeat`` states: the vault_db
flow of the style guide (read, compare, return early, test mode, act, read back, report) in
one place.

Not a state for SLS files. The states call it through the state loader, the way Salt's own
states call each other (``__states__["file.managed"]`` in ``salt/states/x509.py``)::

    return __states__["mc_flow.converge"](name, plan, act, confirm)

``__states__`` is the state loader itself (``pack_self="__states__"`` in
``salt/loader/__init__.py: states()``), so the skeleton runs in the caller's loader and reads
the same ``__opts__["test"]``, including the test run that ``prereq`` makes. Why this and not
a ``_utils`` module or an import: docs/modules.md, "One state skeleton".
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "mc_flow"


def __virtual__():
    return __virtualname__


def converge(name, plan=None, act=None, confirm=None, report_unconfirmed=False, report_error=False):
    """
    Run one state through the flow and return its ``{name, result, changes, comment}``.

    plan()
        Reads the live state and compares it with the wanted one; returns one of

        - ``{"result": True, "comment": ...}``: nothing differs (also under ``test=True``);
        - ``{"result": False, "comment": ...}``: refused before anything is done;
        - ``{"changes": {...}, "would": ..., "done": ..., ...}``: there is work. ``changes``
          is what a real run reports (empty for a state that only waits), ``would`` the
          test-mode comment, ``done`` the comment of a run that took; any other keys are
          the state's own, for ``act`` and ``confirm``.
    act(step)
        Makes the change (None: nothing to do but wait). Returns None, or a comment when
        it gave up before changing anything (then no changes are reported).
    confirm(step)
        Reads back. Returns None when the change took (it may set a final
        ``step["done"]``), else the failure comment.
    report_unconfirmed
        A failed read-back still reports the changes (the state did act).
    report_error
        A ``CommandExecutionError`` raised after the plan still reports the planned changes.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if not callable(plan):
        ret["comment"] = (
            "mc_flow.converge is the drbd/o2cb/heartbeat states' skeleton, called through "
            "__states__; it is not a state for SLS files"
        )
        return ret
    step = {}
    try:
        step = plan()
        if "changes" not in step:
            ret.update(result=step["result"], comment=step["comment"])
            return ret
        if __opts__["test"]:
            ret.update(result=None, comment=step["would"], changes=step["changes"])
            return ret
        gave_up = act(step) if act is not None else None
        if gave_up:
            ret["comment"] = gave_up
            return ret
        failed = confirm(step)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        if report_error:
            ret["changes"] = step.get("changes", {})
        return ret
    if failed:
        ret["comment"] = failed
        if report_unconfirmed:
            ret["changes"] = step["changes"]
        return ret
    ret.update(result=True, changes=step["changes"], comment=step["done"])
    return ret
