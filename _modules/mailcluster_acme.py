"""
Certificates from an ACME CA (DNS-01 through the cluster's own BIND), the acme role's facts.

- :py:func:`facts`: what ``salt/acme/map.jinja`` adds to the role's map under ``cluster``:
  the names on this node's certificate (every name a user or an MTA uses for a domain), the
  challenge names the DNS primary lets the ACME key update, the DNS primary's address and
  the TSIG key (``mailcluster:secrets:acme``).
- :py:func:`lineage` reads certbot's lineage (names, server, serial, expiry) and the
  certificate the services are given.
- :py:func:`obtain` runs ``certbot certonly`` (DNS-01 with the rfc2136 plugin) and
  :py:func:`deploy` the deploy hook; the state ``mailcluster_acme.certificate`` calls them.

Nothing here prints or passes a secret: the TSIG key goes to certbot in its credentials file
(mode 0600), never on a command line.
"""

import datetime
import logging
import os
import shutil
import urllib.parse

from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

try:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_acme"

PILLAR_KEY = "mailcluster"

NEEDS = ("mailcluster.nodes_with", "mailcluster.dns_primary", "mailcluster_records.mail_names")


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "mailcluster_acme needs the cryptography package")
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_acme needs {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def _with(role, mc):
    return __salt__["mailcluster.nodes_with"](role, {PILLAR_KEY: mc})


def _domains(mc):
    return sorted(
        d for d, conf in (mc.get("domains") or {}).items() if not (conf or {}).get("absent")
    )


def names(labels=None, node=None, pillar=None):
    """
    The names on ``node``'s certificate (this minion by default), sorted: on a mail node, for
    every domain not absent, the round-robin name (``dns:rr_name``, ``mail``), every mail
    node's MX host name (a node serves its peer's address after a failover; layout cluster:
    the cluster zone's hosts and the ``<node>.<domain>`` aliases) and ``labels``
    (autoconfig, autodiscover, mta-sts, webmail); on the web node the ``labels`` names. Empty
    on other nodes.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.names
    """
    pl = pillar if pillar is not None else __pillar__
    name = node or __grains__["id"]
    labels = list(labels if labels is not None else ["autoconfig", "autodiscover", "mta-sts"])
    # the dns, mail and web maps and challenges() ask for the same names: once per job
    return __salt__["mailcluster_memo.once"](
        "mailcluster_acme.names",
        [pl.get(PILLAR_KEY), pl.get("dns")],
        lambda: _names(labels, name, pl),
        extra=(tuple(labels), name),
    )


def _names(labels, name, pl):
    mc = pl.get(PILLAR_KEY) or {}
    mail = _with("mail", mc)
    out = set()
    if name in mail:  # layout cluster: the MX hosts and the SRV target in the cluster zone
        hosts = __salt__["mailcluster_records.mail_names"](_mc=mc, _dns=pl.get("dns") or {})
        if hosts["layout"] == "cluster":
            out.update([hosts["host"], *hosts["nodes"].values()])
    for domain in _domains(mc):
        if name in mail:
            out.add(f"{traverse_dict(pl, 'dns:rr_name') or 'mail'}.{domain}")
            out.update(f"{m}.{domain}" for m in mail)
            out.update(f"{label}.{domain}" for label in labels)
        if name in _with("web", mc):
            out.update(f"{label}.{domain}" for label in labels)
    return sorted(out)


def challenges(labels=None, pillar=None):
    """
    Per zone, the ``_acme-challenge`` names (absolute, with the final dot) of every node's
    certificate names in it: the only TXT records the ACME TSIG key may update.

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_acme.challenges
    """
    pl = pillar if pillar is not None else __pillar__
    return __salt__["mailcluster_memo.once"](
        "mailcluster_acme.challenges",
        [pl.get(PILLAR_KEY), pl.get("dns")],
        lambda: _challenges(labels, pl),
        extra=None if labels is None else tuple(labels),
    )


def _challenges(labels, pl):
    mc = pl.get(PILLAR_KEY) or {}
    zones = set(_domains(mc))
    hosts = __salt__["mailcluster_records.mail_names"](_mc=mc, _dns=pl.get("dns") or {})
    if hosts["zone"]:
        zones.add(hosts["zone"])
    out = {}
    for node in sorted(mc.get("nodes") or {}):
        for fqdn in names(labels, node, pl):
            # the longest zone the name is in (a domain may be a subdomain of another): its
            # suffixes looked up, longest first (not every zone per name: 10,000 domains)
            # (not named `labels`: that is the argument, the next node's names need it)
            parts = fqdn.split(".")
            zone = next(
                s for s in (".".join(parts[i:]) for i in range(1, len(parts))) if s in zones
            )
            out.setdefault(zone, set()).add(f"_acme-challenge.{fqdn}.")
    return {zone: sorted(recs) for zone, recs in sorted(out.items())}


def facts(params, node=None, pillar=None):
    """
    The acme facts of ``node`` for the role's parameters ``params`` (its merged map): the
    certificate's names, the challenge names per zone, the DNS primary's address and the
    ACME TSIG key. Raises naming the pillar key when an ACME server is set without
    ``mailcluster:secrets:acme:secret``.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.facts '{"labels": ["autoconfig"]}'
    """
    pl = pillar if pillar is not None else __pillar__
    mc = pl.get(PILLAR_KEY) or {}
    params = params or {}
    secret = traverse_dict(mc, "secrets:acme:secret")
    if params.get("server") and not params.get("email"):
        raise CommandExecutionError(
            "acme:email: required when acme:server is set (the ACME account's contact)"
        )
    if params.get("server") and not secret:
        raise CommandExecutionError(
            "mailcluster:secrets:acme:secret: required when acme:server is set (the TSIG "
            "key certbot signs its DNS-01 updates with)"
        )
    primary = __salt__["mailcluster.dns_primary"]({PILLAR_KEY: mc})
    return {
        "names": names(params.get("labels"), node, pl),
        "challenges": challenges(params.get("labels"), pl),
        "dns_server": (mc.get("nodes") or {}).get(primary, {}).get("ip") if primary else None,
        "tsig": {
            "algorithm": traverse_dict(mc, "secrets:acme:algorithm") or "hmac-sha256",
            "secret": secret,
        },
    }


def _read_cert(path):
    try:
        with open(path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except (OSError, ValueError):
        return None
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        dns = sorted(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = []
    return {
        "names": dns,
        "serial": format(cert.serial_number, "x"),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "issuer": cert.issuer.rfc4514_string(),
    }


def _renewal_conf(path):
    conf = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, sep, value = line.partition("=")
                if sep and not line.startswith((" ", "\t", "#", "[")):
                    conf[key.strip()] = value.strip()
    except OSError:
        return None
    return conf


def lineage(cert_name="mailcluster", config_dir="/etc/letsencrypt", deployed=None):
    """
    certbot's lineage ``cert_name``: its names, server, serial and expiry (None when it does
    not exist), and whether ``deployed`` (the certificate file the services read) holds the
    lineage's certificate.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.lineage mailcluster deployed=/etc/ssl/mailcluster/acme.crt
    """
    conf = _renewal_conf(os.path.join(config_dir, "renewal", f"{cert_name}.conf"))
    live = _read_cert(os.path.join(config_dir, "live", cert_name, "cert.pem"))
    if conf is None or live is None:
        return None
    live["server"] = conf.get("server")
    if deployed:
        have = _read_cert(deployed)
        live["deployed"] = bool(have) and have["serial"] == live["serial"]
    return live


def due(info, renew_days=30):
    """
    True when the lineage ``info`` (:py:func:`lineage`) expires in fewer than ``renew_days``.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.due '{"not_after": "2030-01-01T00:00:00+00:00"}'
    """
    left = datetime.datetime.fromisoformat(info["not_after"]) - datetime.datetime.now(datetime.UTC)
    return left < datetime.timedelta(days=int(renew_days))


#: certbot's lines that say nothing about what went wrong
_NOISE = ("Saving debug log", "Ask for help", "An unexpected error occurred")


def _tail(text, lines=3):
    kept = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return " | ".join([ln for ln in kept if not ln.startswith(_NOISE)][-lines:])


#: an ACME server's answer for an account it does not know (a test CA restarted and forgot
#: them, or the account was deactivated). certbot 2.1 on Python 3.11 then crashes with
#: "AttributeError: can't set attribute" (certbot issue 9539) instead of registering again:
#: the reason is in its log only.
ACCOUNT_GONE = "urn:ietf:params:acme:error:accountDoesNotExist"
CERTBOT_LOG = "/var/log/letsencrypt/letsencrypt.log"


def _account_gone(log_text):
    return ACCOUNT_GONE in (log_text or "")


def _accounts_dir(server, config_dir):
    """Where certbot keeps its accounts of the directory URL ``server``."""
    url = urllib.parse.urlsplit(server)
    return os.path.join(config_dir, "accounts", url.netloc, url.path.strip("/"))


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as src:
            return src.read()
    except OSError:
        return ""


def obtain(
    cert_name,
    names,
    server,
    email,
    credentials,
    hook,
    server_ca=None,
    key_type="ecdsa",
    propagation_seconds=10,
    timeout=300,
    config_dir="/etc/letsencrypt",
):
    """
    Order the certificate ``cert_name`` for ``names`` from the ACME directory ``server``
    (``certbot certonly``, DNS-01 through the rfc2136 plugin with the TSIG key in
    ``credentials``); certbot runs ``hook`` on success, which installs the certificate and
    reloads the services. ``server_ca``: the CA file certbot trusts for the server's HTTPS.
    Raises naming the server (and ``acme:server``) when certbot fails.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.obtain mailcluster '[mail.example.test]' \
            https://acme.example/dir hostmaster@example.test \
            /etc/letsencrypt/mailcluster-rfc2136.ini /usr/local/sbin/mailcluster-acme-deploy
    """
    args = [
        "certbot",
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--email",
        email,
        "--server",
        server,
        "--cert-name",
        cert_name,
        "--key-type",
        key_type,
        "--dns-rfc2136",
        "--dns-rfc2136-credentials",
        credentials,
        "--dns-rfc2136-propagation-seconds",
        str(propagation_seconds),
        "--deploy-hook",
        hook,
        "--force-renewal",
        "--renew-with-new-domains",
    ]
    for name in names:
        args += ["-d", name]
    env = {"REQUESTS_CA_BUNDLE": server_ca} if server_ca else None

    def run():
        return __salt__["cmd.run_all"](
            args, python_shell=False, env=env, timeout=int(timeout), ignore_retcode=True
        )

    res = run()
    if res["retcode"] != 0 and _account_gone(_read(CERTBOT_LOG)):
        # the server forgot our account: drop it, so that certbot registers a new one
        log.warning("acme:server %s does not know our account: registering again", server)
        shutil.rmtree(_accounts_dir(server, config_dir), ignore_errors=True)
        res = run()
    if res["retcode"] != 0:
        raise CommandExecutionError(
            f"acme:server {server}: certbot could not get the certificate (rc "
            f"{res['retcode']}): {_tail(res.get('stderr') or res.get('stdout'))}"
        )
    return res["retcode"] == 0


def deploy(cert_name, hook, config_dir="/etc/letsencrypt"):
    """
    Run the deploy ``hook`` for the lineage ``cert_name`` as certbot does after a renewal
    (``RENEWED_LINEAGE`` set): installs the lineage's certificate where the services read it.

    CLI Example:

    .. code-block:: bash

        salt mx1 mailcluster_acme.deploy mailcluster /usr/local/sbin/mailcluster-acme-deploy
    """
    res = __salt__["cmd.run_all"](
        [hook],
        python_shell=False,
        env={"RENEWED_LINEAGE": os.path.join(config_dir, "live", cert_name)},
        ignore_retcode=True,
    )
    if res["retcode"] != 0:
        raise CommandExecutionError(
            f"{hook} failed (rc {res['retcode']}): {_tail(res.get('stderr') or res.get('stdout'))}"
        )
    return True
