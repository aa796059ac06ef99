"""
External pillar ``mailcluster_dkim``: one DKIM key pair per (domain, selector), made on the
Salt master on first use and kept there, so that both mail nodes sign with the same key and
the DNS zones publish its public half (docs/spam-dkim.md).

Configuration (master; the project ships it as ``reactor/master.d/dkim.conf``)::

    pillar_dirs:
      - /srv/mailcluster/_pillar
    ext_pillar:
      - mailcluster_dkim:
          key_dir: /var/lib/salt/mailcluster/dkim
          bits: 2048

What it returns, from the pillar compiled before it (``mailcluster:domains`` without
``absent: true``, the selector of ``rspamd:dkim:domains:<domain>:selector``, else
``rspamd:dkim:selector``, else ``mail``):

- to every minion: ``mailcluster_dkim: {<domain>: {selector: <s>, txt: "v=DKIM1; k=rsa; p=..."}}``
  (the DNS role publishes ``<selector>._domainkey.<domain>`` from ``txt``);
- to a minion whose ``mailcluster:nodes:<id>:roles`` holds ``mail``, also ``private`` (the
  private key, PEM) of each domain.

Keys live under ``key_dir/<domain>/<selector>.key`` (directories 0700, keys 0600, owned by the
master's user), its TXT record beside it (``<selector>.txt``). A key is made once, under an
exclusive lock (two minions compiling their pillar at once get the same key), and never
changed: a new selector gets a new key, the old one stays on disk. A domain or selector that is
not a valid DNS name is skipped (no file is made for it); the pillar check on the minion names
the key.
"""

import base64
import fcntl
import logging
import os
import re

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_dkim"

#: the selector when pillar names none (salt/rspamd/parameters/defaults.yaml says the same)
DEFAULT_SELECTOR = "mail"
DEFAULT_KEY_DIR = "/var/lib/salt/mailcluster/dkim"
PILLAR_KEY = "mailcluster_dkim"

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
SELECTOR_RE = re.compile(rf"^{_LABEL}$")
DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "mailcluster_dkim needs the Python package cryptography on the master")
    return __virtualname__


def _get(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _selectors(pillar):
    """{domain: selector} of every served domain whose names are valid."""
    domains = _get(pillar, "mailcluster", "domains") or {}
    rspamd = pillar.get("rspamd") or {}
    default = DEFAULT_SELECTOR
    overrides = {}
    for layer in (rspamd.get("lookup") or {}, rspamd):
        dkim = layer.get("dkim") if isinstance(layer, dict) else None
        if not isinstance(dkim, dict):
            continue
        default = dkim.get("selector") or default
        for domain, conf in (dkim.get("domains") or {}).items():
            if isinstance(conf, dict) and conf.get("selector"):
                overrides[domain] = conf["selector"]
    out = {}
    for domain, conf in sorted(domains.items()):
        if (conf or {}).get("absent"):
            continue
        selector = overrides.get(domain, default)
        if not (isinstance(domain, str) and DOMAIN_RE.match(domain)):
            log.error("mailcluster_dkim: no key for %r: not a domain name", domain)
            continue
        if not (isinstance(selector, str) and SELECTOR_RE.match(selector)):
            log.error(
                "mailcluster_dkim: no key for %s: selector %r is not a DNS label", domain, selector
            )
            continue
        out[domain] = selector
    return out


def _make_dir(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _new_key(bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write(path, data, mode=0o600):
    """Write ``data`` to ``path`` atomically, created with ``mode``."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _key(key_dir, domain, selector, bits):
    """(PEM, TXT record) of (domain, selector): read, or made once under the directory's lock."""
    path = os.path.join(key_dir, domain, f"{selector}.key")
    txt_path = os.path.join(key_dir, domain, f"{selector}.txt")
    if not (os.path.exists(path) and os.path.exists(txt_path)):
        fd = os.open(os.path.join(key_dir, ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(path):
                _make_dir(os.path.dirname(path))
                _write(path, _new_key(bits))
                log.info("mailcluster_dkim: made the key of %s selector %s", domain, selector)
            if not os.path.exists(txt_path):
                with open(path, "rb") as src:
                    _write(txt_path, txt_record(src.read()).encode("ascii"), 0o644)
    with open(path, "rb") as src, open(txt_path, encoding="ascii") as txt:
        return src.read(), txt.read().strip()


def txt_record(pem):
    """The DKIM TXT record (``v=DKIM1; k=rsa; p=...``) of a private key in PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def ext_pillar(minion_id, pillar, key_dir=DEFAULT_KEY_DIR, bits=2048):
    """
    ``mailcluster_dkim`` for ``minion_id``: selector and TXT record of every served domain,
    and the private keys if the minion has role mail.
    """
    selectors = _selectors(pillar)
    if not selectors:
        return {}
    _make_dir(key_dir)
    node = _get(pillar, "mailcluster", "nodes", minion_id) or {}
    private = "mail" in (node.get("roles") or [])
    out = {}
    for domain, selector in selectors.items():
        pem, txt = _key(key_dir, domain, selector, int(bits))
        entry = {"selector": selector, "txt": txt}
        if private:
            entry["private"] = pem.decode("ascii")
        out[domain] = entry
    return {PILLAR_KEY: out}
