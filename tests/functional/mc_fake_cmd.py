"""
The replay behind the fake ``cmd`` execution module (fake_tree/_modules/cmdmod.py).

Tests load Salt's real loaders with ``module_dirs`` pointing at fake_tree first, so every
``__salt__["cmd.run_all"]`` call made by our modules and states, in every loader Salt builds
(``state.single`` builds its own), lands here. Outputs are recorded files (see
tests/fixtures/*/README.md) keyed by the exact command line; ``on(..., then=...)`` swaps
in the recordings of the next stage after an action, so a second state run sees the
result of the first.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
_RC = re.compile(r"^\[rc=(\d+)\]\s*$")

OK = {"stdout": "", "stderr": "", "retcode": 0}


def recorded(relpath):
    """``{"stdout", "stderr", "retcode"}`` from a file ending with ``[rc=N]``."""
    lines = (FIXTURES / relpath).read_text().splitlines(keepends=True)
    retcode = 0
    for idx in range(len(lines) - 1, -1, -1):
        match = _RC.match(lines[idx])
        if match:
            retcode, lines = int(match.group(1)), lines[:idx]
            break
    body = "".join(lines)
    if retcode == 0:
        return {"stdout": body, "stderr": "", "retcode": 0}
    return {"stdout": "", "stderr": body, "retcode": retcode}


def _result(value):
    return recorded(value) if isinstance(value, str) else dict(value)


class Scenario:
    def __init__(self):
        self.reset()

    def reset(self):
        self.table = {}
        self.after = {}
        self.calls = []
        self.unexpected = []

    def set(self, table):
        """Map command lines to recordings (a fixture path or a result dict)."""
        for cmdline, value in table.items():
            self.table[cmdline] = _result(value)
        return self

    def on(self, cmdline, value=None, then=None):
        """``cmdline`` answers ``value`` (default rc 0, no output), then ``then`` applies."""
        self.table[cmdline] = _result(value if value is not None else OK)
        self.after[cmdline] = {key: _result(val) for key, val in (then or {}).items()}
        return self

    def seq(self, cmdline, values):
        """``cmdline`` answers each of ``values`` in turn, then keeps the last one."""
        self.table[cmdline] = [_result(value) for value in values]
        return self

    def run(self, cmd, **_kwargs):
        cmdline = cmd if isinstance(cmd, str) else " ".join(str(part) for part in cmd)
        self.calls.append(cmdline)
        if cmdline not in self.table:
            self.unexpected.append(cmdline)
            return {
                "stdout": "",
                "stderr": f"fake cmd: nothing recorded for {cmdline!r}",
                "retcode": 127,
                "pid": 0,
            }
        entry = self.table[cmdline]
        if isinstance(entry, list):
            entry = entry.pop(0) if len(entry) > 1 else entry[0]
        result = dict(entry, pid=0)
        self.table.update(self.after.get(cmdline, {}))
        return result

    def ran(self, prefix):
        return [call for call in self.calls if call.startswith(prefix)]


SCENARIO = Scenario()
