"""
The node's certificate from an ACME CA; the work is done by the ``mailcluster_acme``
execution module (certbot, DNS-01 through the cluster's BIND).

- ``certificate``: certbot's lineage holds a certificate for exactly the wanted names, from
  the wanted server, not due for renewal, and it is the one the services are given. A new
  order only when one of these is not so; otherwise nothing runs (a second apply orders
  nothing). certbot's own timer renews between applies.

Its read, act and read-back go through the shared state skeleton (``_states/mc_flow.py``).
"""

__virtualname__ = "mailcluster_acme"

#: the execution functions this state calls
NEEDS = (
    "mailcluster_acme.lineage",
    "mailcluster_acme.due",
    "mailcluster_acme.obtain",
    "mailcluster_acme.deploy",
)


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster_acme states need {', '.join(missing)} (modules not loaded)")
    if "mc_flow.converge" not in __states__:
        return (
            False,
            "the mailcluster_acme states need the shared skeleton (_states/mc_flow.py not loaded)",
        )
    return __virtualname__


def certificate(
    name,
    dns_names,
    server,
    email,
    credentials,
    hook,
    deployed,
    server_ca=None,
    key_type="ecdsa",
    propagation_seconds=10,
    renew_days=30,
    timeout=300,
    config_dir="/etc/letsencrypt",
):
    """
    certbot's lineage ``name`` holds a certificate for ``dns_names`` from the ACME directory
    ``server``, with more than ``renew_days`` left, and ``deployed`` (the file the services
    read, which the deploy ``hook`` writes) is that certificate. When the server does not
    answer, the state fails naming it and the services keep the certificate they have.

    .. code-block:: yaml

        acme-certificate-mailcluster-acme-certificate:
          mailcluster_acme.certificate:
            - name: mailcluster
            - dns_names: [mail.example.test, mx1.example.test]
            - server: https://acme-v02.api.letsencrypt.org/directory
            - email: hostmaster@example.test
            - credentials: /etc/letsencrypt/mailcluster-rfc2136.ini
            - hook: /usr/local/sbin/mailcluster-acme-deploy
            - deployed: /etc/ssl/mailcluster/acme.crt
    """
    wanted = sorted(dns_names)

    def read():
        return __salt__["mailcluster_acme.lineage"](name, config_dir, deployed)

    def plan():
        have = read()
        reasons = []
        if have is None:
            reasons.append("no certificate yet")
        else:
            if have["names"] != wanted:
                reasons.append("names changed")
            if have.get("server") != server:
                reasons.append(f"server was {have.get('server')}")
            if __salt__["mailcluster_acme.due"](have, renew_days):
                reasons.append(f"expires {have['not_after']}")
        if reasons:
            old = None if have is None else {"names": have["names"], "serial": have["serial"]}
            return {
                "changes": {"certificate": {"old": old, "new": {"names": wanted}}},
                "would": f"would order {name} from {server} ({'; '.join(reasons)})",
                "order": True,
            }
        if not have["deployed"]:
            return {
                "changes": {"deployed": {"old": None, "new": have["serial"]}},
                "would": f"would install {name} (serial {have['serial']}) for the services",
                "order": False,
            }
        return {"result": True, "comment": f"{name} is current (serial {have['serial']})"}

    def act(step):
        if step["order"]:
            __salt__["mailcluster_acme.obtain"](
                name,
                wanted,
                server,
                email,
                credentials,
                hook,
                server_ca=server_ca,
                key_type=key_type,
                propagation_seconds=propagation_seconds,
                timeout=timeout,
                config_dir=config_dir,
            )
        else:
            __salt__["mailcluster_acme.deploy"](name, hook, config_dir)

    def confirm(step):
        have = read()
        if have is None or have["names"] != wanted:
            return f"certbot ran but lineage {name} does not hold {wanted}"
        if not have["deployed"]:
            return f"{deployed} is not the lineage's certificate (deploy hook {hook})"
        if step["order"]:
            step["changes"]["certificate"]["new"]["serial"] = have["serial"]
        step["done"] = f"{name}: serial {have['serial']} from {server}, installed"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)
