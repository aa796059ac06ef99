"""
Certificates from an ACME CA by DNS-01 through the cluster's BIND (salt/acme, issue 13.3),
with pebble, the lab's test CA on the master's node (acme.pebble).

- every name a user or an MTA uses for a domain verifies by name against pebble's root
  (fetched from pebble's management API): on both mail nodes SMTP STARTTLS on 25 and 587
  (`openssl s_client -verify_hostname`), IMAPS 993 (python's ssl); on the web node HTTPS
  for the web names; a client that sends no SNI still gets the cluster certificate;
- a second `state.apply acme` orders nothing (0 changes);
- a forced renewal (`certbot renew --force-renewal`, as certbot's timer renews) gives a new
  serial that postfix and dovecot serve at once, their main PIDs unchanged (reloaded);
- an ACME server that does not answer: the apply fails naming it and `acme:server`, and the
  services keep serving the certificate they had.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest
from _roles_helpers import acme_root_pem, state_results, wait_for

pytestmark = [pytest.mark.lab]

DOMAINS = ["example.test", "sales.test"]
MAIL = ["mx1", "mx2"]
MAIL_NAMES = ["mail", "mx1", "mx2", "autoconfig", "autodiscover", "mta-sts", "webmail"]
WEB_NAMES = ["autoconfig", "autodiscover", "mta-sts", "webmail"]
DEAD = "https://10.88.0.254:14000/dir"  # no node has this address


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _apply(lab, *targets: str, pillar: dict | None = None) -> dict:
    args = ["-L", ",".join(targets), "state.apply", "acme"]
    if pillar:
        args.append("pillar=" + json.dumps(pillar))
    data = lab.salt_json(*args, "--timeout=300", timeout=400)
    assert set(data) == set(targets), data
    return data


@pytest.fixture(scope="module")
def converged(lab):
    """`state.apply acme` on the nodes that serve TLS, twice: the second run changes nothing."""
    t0 = time.monotonic()
    first = _apply(lab, "mx1", "mx2", "ns1")
    failed, _ = state_results(first)
    assert failed == []
    for node, states in first.items():  # the lab pillar sets acme:server
        assert any("acme-certificate-mailcluster-acme-certificate" in k for k in states), node
    second = _apply(lab, "mx1", "mx2", "ns1")
    print(f"two applies of acme on mx1, mx2, ns1: {time.monotonic() - t0:.1f} s")
    return second


@pytest.fixture(scope="module")
def root_pem(lab, converged) -> str:
    """The root pebble issues under (made anew at each pebble start), over its HTTPS API."""
    return acme_root_pem(lab)


@pytest.fixture(scope="module")
def root_file(root_pem, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("acme") / "pebble-root.pem"
    path.write_text(root_pem)
    return str(path)


def _renew(lab, node: str) -> None:
    """What certbot's timer does when a certificate is due, forced, at once."""
    _ok(
        lab.run(
            node,
            "env",
            "REQUESTS_CA_BUNDLE=/etc/ssl/mailcluster/ca.crt",
            "certbot",
            "renew",
            "--force-renewal",
            "--cert-name",
            "mailcluster",
            "--non-interactive",
            "--no-random-sleep-on-renew",  # certbot sleeps up to 8 min without a TTY
            timeout=120,
        )
    )


@pytest.fixture(scope="module", autouse=True)
def issued_by_this_pebble(lab, root_pem):
    """pebble makes a new root at each start (a restart of the salt node, a new cluster CA):
    a certificate from an earlier start chains to none it serves; such a one is renewed
    first (a real CA's roots do not change like this)."""
    for node in ("mx1", "mx2", "ns1"):
        check = lab.run(
            node,
            "sh",
            "-c",
            f"printf '%s' '{root_pem}' > /tmp/pebble-root.pem && openssl verify -CAfile "
            "/tmp/pebble-root.pem -untrusted /etc/letsencrypt/live/mailcluster/chain.pem "
            "/etc/letsencrypt/live/mailcluster/cert.pem",
        )
        if check.returncode != 0:
            print(f"{node}: certificate from an earlier pebble start, renewed")
            _renew(lab, node)


def _imaps_serial(ip: str, name: str | None, ctx: ssl.SSLContext) -> str:
    with (
        socket.create_connection((ip, 993), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=name) as tls,
    ):
        return tls.getpeercert()["serialNumber"]


def _https_names(ip: str, name: str, ctx: ssl.SSLContext) -> set[str]:
    with (
        socket.create_connection((ip, 443), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=name) as tls,
    ):
        return {v for _, v in tls.getpeercert()["subjectAltName"]}


def _smtp_verify(ip: str, port: int, name: str, root_file: str) -> str:
    """openssl's own verdict (exit status and text) on a STARTTLS session asking for ``name``."""
    proc = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{ip}:{port}",
            "-starttls",
            "smtp",
            "-servername",
            name,
            "-verify_hostname",
            name,
            "-CAfile",
            root_file,
            "-verify_return_error",
            "-brief",
        ],
        input="QUIT\n",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, f"{ip}:{port} {name}: {proc.stderr[-600:]}"
    return proc.stderr


def test_second_apply_orders_nothing(converged):
    failed, changed = state_results(converged)
    assert failed == [] and changed == []


@pytest.mark.parametrize("node", MAIL)
def test_mail_node_serves_every_name_verified(lab, node, root_pem, root_file):
    ip = lab.ip(node)
    ctx = ssl.create_default_context(cadata=root_pem)  # host name checked against the SANs
    serials = set()
    for domain in DOMAINS:
        for label in MAIL_NAMES:
            name = f"{label}.{domain}"
            serials.add(_imaps_serial(ip, name, ctx))
            for port in (25, 587):
                assert "Verification: OK" in _smtp_verify(ip, port, name, root_file), name
    assert len(serials) == 1  # one certificate with every name
    # no SNI (an IP, as older clients connect): the cluster certificate, not pebble's
    with pytest.raises(ssl.SSLCertVerificationError):
        nohost = ssl.create_default_context(cadata=root_pem)
        nohost.check_hostname = False
        _imaps_serial(ip, None, nohost)


def test_web_node_serves_the_web_names_verified(lab, root_pem):
    ctx = ssl.create_default_context(cadata=root_pem)
    for domain in DOMAINS:
        for label in WEB_NAMES:
            sans = _https_names(lab.ip("ns1"), f"{label}.{domain}", ctx)
            assert sans == {f"{lb}.{d}" for lb in WEB_NAMES for d in DOMAINS}


def _main_pids(lab, node: str) -> dict:
    out = _ok(lab.run(node, "systemctl", "show", "-p", "MainPID", "postfix@-", "dovecot"))
    return dict(enumerate(line.split("=")[1] for line in out.split()))


def _lineage_serial(lab, node: str) -> str:
    out = _ok(
        lab.run(
            node,
            "openssl",
            "x509",
            "-noout",
            "-serial",
            "-in",
            "/etc/letsencrypt/live/mailcluster/cert.pem",
        )
    )
    return out.strip().split("=")[1].upper()


def test_forced_renewal_is_served_without_a_restart(lab, root_pem, root_file):
    ctx = ssl.create_default_context(cadata=root_pem)
    ip, name = lab.ip("mx1"), "mail.sales.test"
    before = _imaps_serial(ip, name, ctx)
    assert before == _lineage_serial(lab, "mx1")
    pids = _main_pids(lab, "mx1")
    t0 = time.monotonic()
    _renew(lab, "mx1")
    after = _lineage_serial(lab, "mx1")
    assert after != before
    assert wait_for(lambda: _imaps_serial(ip, name, ctx) == after, 30)
    served = _smtp_verify(ip, 25, name, root_file)
    assert "Verification: OK" in served
    print(f"forced renewal served after {time.monotonic() - t0:.1f} s: {before} -> {after}")
    assert _main_pids(lab, "mx1") == pids  # reloaded, not restarted
    # the next apply sees the renewed lineage as current
    failed, changed = state_results(_apply(lab, "mx1"))
    assert failed == [] and changed == []


def test_dead_server_fails_naming_it_and_keeps_the_certificate(lab, root_pem):
    ctx = ssl.create_default_context(cadata=root_pem)
    ip, name = lab.ip("mx2"), "mx1.example.test"
    before = _imaps_serial(ip, name, ctx)
    t0 = time.monotonic()
    data = _apply(lab, "mx2", pillar={"acme": {"server": DEAD}})
    failed, _ = state_results(data)
    print(f"apply against a dead ACME server: {time.monotonic() - t0:.1f} s")
    assert [f for f in failed if "acme-certificate-mailcluster-acme-certificate" in f], failed
    text = "\n".join(failed)
    assert f"acme:server {DEAD}" in text, text
    assert _imaps_serial(ip, name, ctx) == before
    sizes = _ok(lab.run("mx2", "stat", "-c", "%s", "/etc/ssl/mailcluster/acme.crt"))
    assert int(sizes) > 500
    # the lineage keeps its server: the next apply with the lab pillar orders nothing
    failed, changed = state_results(_apply(lab, "mx2"))
    assert failed == [] and changed == []
