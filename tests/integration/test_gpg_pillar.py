"""
The secrets pillar encrypted with Salt's ``gpg`` renderer (pillar.example, docs/roles.md "ca"):
a real salt-master (pytest-salt-factories) with a key pair of its own in ``gpg_keydir``, a
``#!yaml|gpg`` pillar file holding only ciphertext, and a minion that gets the plaintext.

The key is made and the value encrypted with the real ``gpg`` (python-gnupg drives it), as a
site does it on its master (``gpg --homedir /etc/salt/gpgkeys``).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

gnupg = pytest.importorskip("gnupg")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg (gnupg) is not installed"),
]

SECRET = "it-gpg-dovecot-7c3e91"
PILLAR_TOP = "base:\n  '*':\n    - secrets\n"


@pytest.fixture(scope="session")
def salt_factories_config(tmp_path_factory):
    return {"root_dir": str(tmp_path_factory.mktemp("gpg-salt"))}


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    """The master's key pair, made as pillar.example says (no passphrase: the master reads the
    key unattended). gpg wants its home private."""
    home = tmp_path_factory.mktemp("gpgkeys")
    home.chmod(0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    spec = gpg.gen_key_input(
        key_type="RSA",
        key_length=2048,
        name_real="mailcluster salt-master",
        name_email="salt@cluster.test",
        no_protection=True,
    )
    key = gpg.gen_key(spec)
    assert key.fingerprint, f"gpg made no key: {key.stderr}"
    yield home, key.fingerprint
    # gpg left an agent running for this home: nothing of the test stays behind
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture(scope="module")
def pillar_file(tmp_path_factory, keydir):
    home, fingerprint = keydir
    gpg = gnupg.GPG(gnupghome=str(home))
    encrypted = gpg.encrypt(SECRET, fingerprint, armor=True, always_trust=True)
    assert encrypted.ok, encrypted.status
    armored = str(encrypted).strip()
    body = "\n".join("          " + line for line in armored.splitlines())
    pillar_dir = tmp_path_factory.mktemp("gpg-pillar")
    (pillar_dir / "top.sls").write_text(PILLAR_TOP)
    path = pillar_dir / "secrets.sls"
    path.write_text(
        "#!yaml|gpg\n"
        "mailcluster:\n"
        "  secrets:\n"
        "    db:\n"
        "      dovecot: |\n"
        f"{body}\n"
        "      postfix: not-encrypted-value\n"
    )
    return path


@pytest.fixture(scope="module")
def minion(salt_factories, keydir, pillar_file):
    home, _ = keydir
    overrides = {
        "transport": "tcp",
        "worker_threads": 2,
        # as reactor/master.d/selfheal.conf ships it (tests/integration/test_selfheal_reactor.py)
        "worker_pools_enabled": False,
        "pillar_roots": {"base": [str(pillar_file.parent)]},
        "gpg_keydir": str(home),
    }
    master = salt_factories.salt_master_daemon("gpg-master", overrides=overrides)
    with master.started():
        node = master.salt_minion_daemon("gpg-minion", overrides={"transport": "tcp"})
        with node.started():
            yield node


def test_minion_gets_the_plaintext(minion):
    # Salt 3008 masks pillar values in its output unless asked (unmask)
    ret = minion.salt_call_cli().run("pillar.get", "mailcluster:secrets:db", "unmask=True")
    assert ret.returncode == 0, ret
    assert ret.data == {"dovecot": SECRET, "postfix": "not-encrypted-value"}


def test_pillar_file_holds_only_ciphertext(pillar_file):
    text = pillar_file.read_text()
    assert SECRET not in text
    assert "-----BEGIN PGP MESSAGE-----" in text
