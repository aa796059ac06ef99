"""
Test double of Salt's ``cmd`` module: replays recorded outputs (tests/functional/mc_fake_cmd.py).

Named like the core file (``cmdmod.py``) so that, with this directory first in
``module_dirs``, the loader maps ``cmd.*`` here instead of running real processes.
"""

import mc_fake_cmd

__virtualname__ = "cmd"


def __virtual__():
    return __virtualname__


def run_all(cmd, **kwargs):
    return mc_fake_cmd.SCENARIO.run(cmd, **kwargs)


def run(cmd, **kwargs):
    return run_all(cmd, **kwargs)["stdout"]


def run_stdout(cmd, **kwargs):
    return run_all(cmd, **kwargs)["stdout"]


def run_stderr(cmd, **kwargs):
    return run_all(cmd, **kwargs)["stderr"]


def retcode(cmd, **kwargs):
    return run_all(cmd, **kwargs)["retcode"]
