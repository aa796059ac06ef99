"""
The cluster CA made and kept on the master's own minion (salt/ca, issue 12.5).

From a cluster without CA (key, certificate and mine value removed on the master, every node's
key and certificate removed) one `salt '*' state.apply` converges: the nodes wait for the CA
(retry) and get their certificates signed remotely; a second apply changes nothing. Then:
the CA key is on the salt node only and in no pillar, every TLS service presents a certificate
that verifies against the master's CA with the node's name, and a node cannot get a
certificate for another node's names.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

import pytest

pytestmark = [pytest.mark.lab]

CA_DIR = "/etc/pki/mailcluster"
NODES = ["salt", "mx1", "mx2", "ns1", "ns2"]
DOMAIN = "cluster.test"
# (node, port, STARTTLS over SMTP first)
SERVICES = [("mx1", 25, True), ("mx2", 25, True), ("mx1", 993, False), ("mx2", 993, False)]
SERVICES += [("ns1", 443, False)]


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _apply(lab) -> dict:
    data = lab.salt_json("*", "state.apply", "--timeout=1200", timeout=1500)
    assert set(data) == set(NODES), data.keys()
    return data


def _failed_and_changed(data: dict) -> tuple[list, list]:
    failed, changed = [], []
    for node, states in data.items():
        assert isinstance(states, dict), f"{node}: {states}"
        for key, ret in states.items():
            if not ret["result"]:
                failed.append((node, key, ret.get("comment")))
            if ret.get("changes"):
                changed.append((node, key))
    return failed, changed


@pytest.fixture(scope="module")
def converged_from_bare(lab):
    """The session's first two highstates when it booted the lab bare (no CA, no node
    certificate yet); on a lab that was already up: remove the CA and every node
    certificate, then apply once and again."""
    if lab.from_bare:
        return lab.from_bare
    _ok(lab.run("salt", "rm", "-rf", CA_DIR))
    _ok(lab.salt("salt", "mine.flush"))
    for node in NODES:
        _ok(
            lab.run(
                node, "sh", "-c", "rm -f /etc/ssl/mailcluster/node.* /etc/ssl/mailcluster/ca.crt"
            )
        )
    first = _apply(lab)
    second = _apply(lab)
    return first, second


@pytest.fixture(scope="module")
def ca_pem(lab, converged_from_bare):
    return _ok(lab.run("salt", "cat", f"{CA_DIR}/ca.crt"))


def test_one_apply_from_bare_converges_second_changes_nothing(converged_from_bare):
    first, second = converged_from_bare
    failed, changed = _failed_and_changed(first)
    assert failed == []
    issued = {n for n, k in changed if "common-tls-cert-x509-certificate-managed" in k}
    assert issued == set(NODES)
    failed, changed = _failed_and_changed(second)
    assert failed == []
    assert changed == []


def _pubkey_hash(lab, node: str, path: str) -> str | None:
    proc = lab.run(node, "sh", "-c", f"openssl pkey -in {path} -pubout | sha256sum")
    return proc.stdout.split()[0] if proc.returncode == 0 else None


def test_ca_key_only_on_the_master(lab, converged_from_bare):
    mode = _ok(lab.run("salt", "stat", "-c", "%a %U", f"{CA_DIR}/ca.key")).split()
    assert mode == ["600", "root"]
    ca_hash = _pubkey_hash(lab, "salt", f"{CA_DIR}/ca.key")
    assert ca_hash
    for node in NODES[1:]:
        assert lab.run(node, "test", "-e", CA_DIR).returncode != 0, node
        found = lab.run(
            node, "grep", "-rlI", "PRIVATE KEY", "/etc", "/root", "/var/cache/salt", "/tmp"
        ).stdout.split()
        assert found, f"{node}: not even its own node key found"
        for path in found:
            assert _pubkey_hash(lab, node, path) != ca_hash, f"CA key on {node}: {path}"


def test_no_private_key_in_any_pillar(lab, converged_from_bare):
    data = lab.salt_json("*", "pillar.items", "unmask=True")
    assert set(data) == set(NODES)
    for node, pillar in data.items():
        # the DKIM keys (made on the master, docs/spam-dkim.md) go to the mail nodes only:
        # the one private key a pillar may carry
        dkim = pillar.pop("mailcluster_dkim", None) or {}
        with_private = sorted(d for d, entry in dkim.items() if "private" in entry)
        mail = "mail" in pillar["mailcluster"]["nodes"][node]["roles"]
        assert with_private == (sorted(dkim) if mail else []), node
        text = json.dumps(pillar)
        assert "PRIVATE KEY" not in text, node
        assert ("x509_signing_policies" in pillar) == (node == "salt"), node


def _served_cert(lab, node: str, port: int, starttls: bool, ctx: ssl.SSLContext) -> dict:
    sock = socket.create_connection((lab.ip(node), port), timeout=10)
    if starttls:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220")
        sock.sendall(b"EHLO test.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220")
    with ctx.wrap_socket(sock, server_hostname=f"{node}.{DOMAIN}") as tls:
        return tls.getpeercert()


@pytest.mark.parametrize("node,port,starttls", SERVICES)
def test_served_certificate_verifies_with_the_node_name(lab, ca_pem, node, port, starttls):
    ctx = ssl.create_default_context(cadata=ca_pem)  # hostname checked against the SANs
    cert = _served_cert(lab, node, port, starttls, ctx)
    sans = {v for _, v in cert["subjectAltName"]}
    assert {f"{node}.{DOMAIN}", f"mail.{DOMAIN}", lab.ip(node)} <= sans
    other = ssl.create_default_context()  # the system CAs alone do not trust it
    with pytest.raises(ssl.SSLCertVerificationError):
        _served_cert(lab, node, port, starttls, other)


def test_node_cannot_use_another_nodes_policy(lab, converged_from_bare):
    proc = lab.salt(
        "mx1",
        "x509.create_certificate",
        "ca_server=salt",
        "signing_policy=mailcluster-ns1",
        "private_key=/etc/ssl/mailcluster/node.key",
        "--out=json",
    )
    assert "minion not permitted to use specified signing policy" in proc.stdout + proc.stderr


def test_own_policy_overrides_asked_names(lab, converged_from_bare):
    """Asked for ns1's names under its own policy, mx1 gets a certificate with its own."""
    data = lab.salt_json(
        "mx1",
        "x509.create_certificate",
        "ca_server=salt",
        "signing_policy=mailcluster-mx1",
        "private_key=/etc/ssl/mailcluster/node.key",
        f"CN=ns1.{DOMAIN}",
        f"subjectAltName=DNS:ns1.{DOMAIN}, IP:10.88.0.21",
    )
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(data["mx1"].encode())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == f"mx1.{DOMAIN}"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"ns1.{DOMAIN}" not in sans.get_values_for_type(x509.DNSName)
    assert f"mx1.{DOMAIN}" in sans.get_values_for_type(x509.DNSName)


def _own_ca() -> tuple[str, str]:
    """A site's CA, made here as a site would bring it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "site own CA (lab test)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.mark.labfull
def test_own_ca_from_pillar_replaces_the_made_one(lab, converged_from_bare):
    """mailcluster:secrets:ca given: the master installs it, nodes are re-signed by it and serve
    certificates that verify against it. Afterwards the lab gets a CA of its own again."""
    import yaml
    from _roles_helpers import LOCAL_PILLAR

    cert_pem, key_pem = _own_ca()
    LOCAL_PILLAR.write_text(
        yaml.safe_dump({"mailcluster": {"secrets": {"ca": {"cert": cert_pem, "key": key_pem}}}})
    )
    try:
        _ok(lab.salt("*", "saltutil.refresh_pillar", "wait=True"))
        data = lab.salt_json("salt", "state.apply", "ca")
        assert all(r["result"] for r in data["salt"].values()), data
        assert _ok(lab.run("salt", "cat", f"{CA_DIR}/ca.crt")).strip() == cert_pem.strip()
        data = lab.salt_json("mx1", "state.apply", "common.tls")
        failed, changed = _failed_and_changed(data)
        assert failed == []
        assert any("common-tls-cert-x509-certificate-managed" in k for _, k in changed)
        assert _ok(lab.run("mx1", "cat", "/etc/ssl/mailcluster/ca.crt")).strip() == cert_pem.strip()
        ctx = ssl.create_default_context(cadata=cert_pem)
        cert = _served_cert(lab, "mx1", 993, False, ctx)
        assert ("DNS", f"mx1.{DOMAIN}") in cert["subjectAltName"]
    finally:
        LOCAL_PILLAR.unlink(missing_ok=True)
        _ok(lab.salt("*", "saltutil.refresh_pillar", "wait=True"))
        _ok(lab.run("salt", "rm", "-rf", CA_DIR))
        lab.salt("salt", "state.apply", "ca")
        failed, _ = _failed_and_changed(_apply(lab))
        assert failed == []
    assert _ok(lab.run("salt", "cat", f"{CA_DIR}/ca.crt")).strip() != cert_pem.strip()
