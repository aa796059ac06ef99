"""
Helpers for unit tests: pure parsers and error paths of our loader modules.

Every output fed to them was recorded from real tools: DRBD 8.4 / OCFS2 guests
(tests/fixtures/drbd-ocfs2/, copied verbatim from shared/fixtures/drbd-ocfs2/), drbd-utils
and ocfs2-tools run on a host without the kernel modules (tests/fixtures/drbd-ocfs2/host-tools/),
and heartbeat 3.0.6 (tests/fixtures/heartbeat/).
"""

import importlib.util
import inspect
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
_RC = re.compile(r"^\[rc=(\d+)\]\s*$")


def load_loader_module(kind, name):
    """Import ``_<kind>/<name>.py`` as a plain module (for parsers and LoaderModuleMock)."""
    modname = f"mc_unit_{kind}_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, REPO / f"_{kind}" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def salt_functions(*names):
    """
    ``__salt__`` entries of our pure execution modules loaded by path, as the loader names
    them (``{"drbd_parse.status": <function>}``): the command modules reach their parsers
    through ``__salt__``.
    """
    out = {}
    for name in names:
        module = load_loader_module("modules", name)
        for fname, func in inspect.getmembers(module, inspect.isfunction):
            if not fname.startswith("_") and func.__module__ == module.__name__:
                out[f"{module.__virtualname__}.{fname}"] = func
    return out


def command_module_dunders(module, parser, run_all):
    """``configure_loader_modules`` for one of our command modules: ``cmd.run_all`` replayed,
    its parser module in ``__salt__``, an empty ``__context__``."""
    salt = {"cmd.run_all": run_all, **salt_functions(parser)}
    return {module: {"__salt__": salt, "__context__": {}}}


def runner_loader(cachedir, **overrides):
    """Salt's own runner loader over ``_runners/``, as on the master: the runner modules reach
    each other through ``__salt__`` (the loader itself), which loading them by path cannot give;
    the roles' files (``_modules``, ``salt/selfheal``) are read from the repo. Only our runners
    are loaded (``whitelist``); they call only each other."""
    import salt.config
    import salt.loader

    opts = salt.config.master_config(None)
    opts.update(
        {
            "id": "salt",
            "cachedir": str(cachedir),
            "runner_dirs": [str(REPO / "_runners")],
            "file_roots": {"base": []},
            "mailcluster_roots": [str(REPO / "salt"), str(REPO)],
            **overrides,
        }
    )
    ours = sorted(p.stem for p in (REPO / "_runners").glob("*.py"))
    return salt.loader.runner(opts, whitelist=ours)


def recorded(relpath):
    """
    Return ``{"stdout", "stderr", "retcode"}`` for a recorded output file.

    Files end with ``[rc=N]``; the text before it is the command's combined output. It is
    returned as stdout on success and as stderr on failure, as the tools print it.
    """
    text = (FIXTURES / relpath).read_text()
    lines = text.splitlines(keepends=True)
    retcode = 0
    for idx in range(len(lines) - 1, -1, -1):
        match = _RC.match(lines[idx])
        if match:
            retcode = int(match.group(1))
            lines = lines[:idx]
            break
    body = "".join(lines)
    if retcode == 0:
        return {"stdout": body, "stderr": "", "retcode": 0, "pid": 1}
    return {"stdout": "", "stderr": body, "retcode": retcode, "pid": 1}


def output(relpath):
    """The recorded text only."""
    res = recorded(relpath)
    return res["stdout"] or res["stderr"]


class FakeRunAll:
    """A ``cmd.run_all`` that replays recorded outputs keyed by the command line."""

    def __init__(self, table=None):
        self.table = {}
        self.calls = []
        for key, value in (table or {}).items():
            self.add(key, value)

    def add(self, cmdline, *relpaths_or_results):
        seq = []
        for item in relpaths_or_results:
            seq.append(recorded(item) if isinstance(item, str) else dict(item))
        self.table[cmdline] = seq
        return self

    def __call__(self, cmd, **kwargs):
        cmdline = cmd if isinstance(cmd, str) else " ".join(cmd)
        self.calls.append(cmdline)
        if cmdline not in self.table:
            raise AssertionError(f"unexpected command: {cmdline!r}")
        seq = self.table[cmdline]
        return dict(seq.pop(0) if len(seq) > 1 else seq[0])


OK = {"stdout": "", "stderr": "", "retcode": 0, "pid": 1}


def raw(relpath):
    """The whole recorded file, for transcripts holding several commands."""
    return (FIXTURES / relpath).read_text()
