"""
The recorded heartbeat answers of a node at a stage, keyed by command line, for every tier
that replays them (the unit tests' FakeRunAll, the functional tier's fake ``cmd``). Files:
``tests/fixtures/heartbeat/STAGE.NODE.COMMAND.txt`` (see its README.md). Importable from
every tier: ``tests/`` is on ``sys.path`` through ``tests/conftest.py``.
"""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# command line -> the COMMAND part of the file name
HEARTBEAT_COMMANDS = {
    "cl_status hbstatus": "cl_status_hbstatus",
    "cl_status listnodes": "cl_status_listnodes",
    "cl_status nodestatus mx1": "cl_status_nodestatus_mx1",
    "cl_status nodestatus mx2": "cl_status_nodestatus_mx2",
    "cl_status nodestatus nosuch": "cl_status_nodestatus_nosuch",
    "cl_status rscstatus": "cl_status_rscstatus",
    "ip -o addr show": "ip_o_addr_show",
}


def heartbeat_node(stage, node="mx1"):
    """
    ``{command line: fixture path}`` for what ``node`` recorded at ``stage`` (commands it
    has no recording for are left out), plus ``uname -n`` answering ``node``.
    """
    table = {"uname -n": {"stdout": f"{node}\n", "stderr": "", "retcode": 0}}
    for cmd, name in HEARTBEAT_COMMANDS.items():
        rel = f"heartbeat/{stage}.{node}.{name}.txt"
        if (FIXTURES / rel).exists():
            table[cmd] = rel
    return table
