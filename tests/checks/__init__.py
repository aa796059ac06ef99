"""Host checks, one module per role (``common.py``, ``dns_primary.py``, ...): functions
``check_*(host)`` over a testinfra host, the same ones for a kitchen instance (through
``verify.py``, kitchen.yml's verifier) and for a lab node (``checks.verify(host, roles)`` from
tests/lab). What they look at: services running and enabled, ports listening on the node's
address, packages installed, file modes and owners; each asserts with what it found.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import testinfra

# the network interface of the cluster (pillar mailcluster:cluster:interface, lab and kitchen)
INTERFACE = "eth0"


def nspawn_host(node: str, lab: str | None = None):
    """The testinfra host of a lab node (mclab.testinfra_nspawn; ``lab`` another instance)."""
    return testinfra.get_host(f"nspawn://{node}" + (f"?namespace={lab}" if lab else ""))


def node_ip(host) -> str:
    """The node's own address: the first IPv4 address of the cluster interface (a mail node
    of the lab also holds service IPs there, after it)."""
    return host.interface(INTERFACE, "inet").addresses[0]


def assert_file(host, path: str, mode: int, user: str = "root", group: str = "root") -> None:
    found = host.file(path)
    assert found.exists, f"{path} is missing"
    got = (oct(found.mode), found.user, found.group)
    assert got == (oct(mode), user, group), f"{path}: mode, owner, group {got}"


def assert_service(host, name: str) -> None:
    service = host.service(name)
    assert service.is_running, f"{name} is not running"
    assert service.is_enabled, f"{name} is not enabled"


def assert_listening(host, *specs: str) -> None:
    """``tcp:25`` etc.: listening on the node's own address or on all IPv4 addresses (asked
    apart: testinfra 10.2's is_listening with an address does not count a 0.0.0.0 socket)."""
    ip = node_ip(host)
    for spec in specs:
        proto, port = spec.split(":")
        found = [host.socket(f"{proto}://{a}:{port}").is_listening for a in (ip, "0.0.0.0")]
        assert any(found), f"nothing on {proto} {ip}:{port} (nor on 0.0.0.0)"


def assert_packages(host, *names: str) -> None:
    missing = [n for n in names if not host.package(n).is_installed]
    assert not missing, f"packages not installed: {', '.join(missing)}"


def checks(role: str) -> list[Callable]:
    """The check functions of a role's module, in file order (none for a role without one)."""
    if importlib.util.find_spec(f"{__name__}.{role}") is None:
        return []
    module = importlib.import_module(f"{__name__}.{role}")
    found = [getattr(module, n) for n in vars(module) if n.startswith("check_")]
    return [f for f in found if callable(f)]


def verify(host, roles: list[str]) -> None:
    """Every check of every role named (those with a module); one AssertionError listing
    each failed check with what it found."""
    failed = []
    for role in roles:
        for check in checks(role):
            try:
                check(host)
            except AssertionError as exc:
                failed.append(f"{role}.{check.__name__}: {exc}")
    assert not failed, "host checks failed:\n" + "\n".join(failed)
