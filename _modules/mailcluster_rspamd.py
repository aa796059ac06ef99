"""
The DKIM facts of the rspamd role on a mail node: which domain signs with which selector and
key file, from pillar ``mailcluster:domains`` and ``mailcluster_dkim`` (the master's ext_pillar,
_pillar/mailcluster_dkim.py; docs/spam-dkim.md).
"""

__virtualname__ = "mailcluster_rspamd"

#: the ext_pillar's pillar key
DKIM_KEY = "mailcluster_dkim"


def __virtual__():
    return __virtualname__


def _domains():
    domains = (__pillar__.get("mailcluster") or {}).get("domains") or {}
    return sorted(d for d, conf in domains.items() if not (conf or {}).get("absent"))


def dkim(key_dir="/var/lib/rspamd/dkim"):
    """
    The signing table of this node: ``{"signing": [{domain, selector, path}], "private":
    {domain: PEM}, "missing": [pillar key, ...]}``; a served domain without its key pair in
    pillar (the ext_pillar not configured on the master, or a selector it refused) is listed
    under ``missing`` by its pillar key and is not signed.

    CLI Example:

    .. code-block:: bash

        salt-call --no-return-event mailcluster_rspamd.dkim
    """
    given = __pillar__.get(DKIM_KEY) or {}
    signing, private, missing = [], {}, []
    for domain in _domains():
        entry = given.get(domain) or {}
        if not (entry.get("selector") and entry.get("private")):
            missing.append(f"{DKIM_KEY}:{domain}")
            continue
        path = f"{key_dir.rstrip('/')}/{domain}.{entry['selector']}.key"
        signing.append({"domain": domain, "selector": entry["selector"], "path": path})
        private[domain] = entry["private"]
    return {"signing": signing, "private": private, "missing": missing}


def key_files(key_dir="/var/lib/rspamd/dkim"):
    """
    ``{file name: PEM}``: the private key file of every domain this node signs for, as
    :py:func:`dkim` names them under ``key_dir`` (for the state ``mailcluster_files.dkim_keys``).

    CLI Example:

    .. code-block:: bash

        salt-call --no-return-event mailcluster_rspamd.key_files
    """
    table = dkim(key_dir)
    out = {}
    for row in table["signing"]:
        pem = table["private"][row["domain"]]
        # with the final newline file.managed's contents gave the key files before
        out[row["path"].rsplit("/", 1)[1]] = pem if pem.endswith("\n") else pem + "\n"
    return out
