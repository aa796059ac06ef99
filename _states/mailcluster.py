"""
States for the mail cluster's pillar-driven data; the work is done by the execution modules
``mailcluster`` (pillar check), ``mailcluster_dns`` (zones) and ``mailcluster_db`` (rows,
replication).

- ``pillar_valid``: the ``mailcluster`` pillar is valid (``mailcluster.validate``).
- ``zones_synced``: zone files on the DNS primary match pillar (serial bumped only on change).
- ``domains_synced``: Postfix Admin's domain/mailbox/alias rows match pillar.
- ``replica_running``: this MariaDB replicates from the primary with GTID.
"""

from salt.exceptions import CommandExecutionError

__virtualname__ = "mailcluster"

#: the execution functions these states call
NEEDS = (
    "mailcluster.validate",
    "mailcluster_dns.dns_sync",
    "mailcluster_db.db_sync",
    "mailcluster_db.replica_status",
    "mailcluster_db.replica_configure",
)


def __virtual__():
    missing = [fun for fun in NEEDS if fun not in __salt__]
    if missing:
        return (False, f"mailcluster states need {', '.join(missing)} (modules not loaded)")
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def pillar_valid(name):
    """
    The ``mailcluster`` pillar is valid; otherwise fail, naming every bad key. Run it first
    with ``failhard`` so that nothing changes on a node whose pillar is bad.

    .. code-block:: yaml

        common-pillar-mailcluster-pillar-valid:
          mailcluster.pillar_valid:
            - name: mailcluster
            - failhard: true
    """
    ret = _ret(name)
    errors = __salt__["mailcluster.validate"]()
    if errors:
        ret.update(result=False, comment="invalid pillar: " + "; ".join(errors))
    else:
        ret["comment"] = "pillar is valid"
    return ret


def zones_synced(name, serial_floor=None):
    """
    Zone files in directory ``name`` hold the records computed from pillar.

    ``serial_floor`` (``{zone: serial}``): a zone whose serial is not above its floor is
    written again with a higher serial (the failover runner passes the serials a stand-in
    primary served, docs/selfheal.md).

    .. code-block:: yaml

        dns-zones:
          mailcluster.zones_synced:
            - name: /var/lib/bind/mailcluster
    """
    ret = _ret(name)
    try:
        plan = __salt__["mailcluster_dns.dns_sync"](name, test=True, serial_floor=serial_floor)
        if not plan["changed"]:
            ret["comment"] = "all zones match pillar"
            return ret
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"{len(plan['changed'])} zone(s) would be written",
                changes={
                    z: {"old": p.get("old_serial") or None, "new": p["serial"]}
                    for z, p in plan["changed"].items()
                },
            )
            return ret
        done = __salt__["mailcluster_dns.dns_sync"](name, serial_floor=serial_floor)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret["changes"] = done["changed"]
    if done["errors"]:
        ret.update(
            result=False,
            comment="zone check failed, old zone kept: "
            + "; ".join(f"{z}: {e}" for z, e in done["errors"].items()),
        )
        return ret
    recheck = __salt__["mailcluster_dns.dns_sync"](name, test=True, serial_floor=serial_floor)
    if recheck["changed"]:
        ret.update(result=False, comment=f"zones still differ: {sorted(recheck['changed'])}")
        return ret
    ret["comment"] = f"{len(done['changed'])} zone(s) written"
    return ret


def domains_synced(name, database="postfixadmin"):
    """
    Postfix Admin's tables in ``database`` hold pillar's domains, mailboxes and aliases.

    .. code-block:: yaml

        db-domains:
          mailcluster.domains_synced:
            - name: postfixadmin
    """
    ret = _ret(name)
    try:
        todo = __salt__["mailcluster_db.db_sync"](database, test=True)
        if not todo:
            ret["comment"] = "domains, mailboxes and aliases match pillar"
            return ret
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"{len(todo)} row change(s) would be made",
                changes={"rows": {"old": None, "new": todo}},
            )
            return ret
        done = __salt__["mailcluster_db.db_sync"](database)
        left = __salt__["mailcluster_db.db_sync"](database, test=True)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    ret["changes"] = {"rows": {"old": None, "new": done}}
    if left:
        ret.update(result=False, comment=f"still differs after update: {left}")
        return ret
    ret["comment"] = f"{len(done)} row change(s) made"
    return ret


def replica_running(name, user, password, port=3306):
    """
    This MariaDB replicates from ``name`` (the primary's address) with GTID, both threads on.

    .. code-block:: yaml

        db-replica:
          mailcluster.replica_running:
            - name: 10.88.0.21
            - user: repl
            - password: secret
    """
    ret = _ret(name)
    try:
        cur = __salt__["mailcluster_db.replica_status"]()
        good = (
            cur is not None
            and cur.get("Master_Host") == name
            and cur.get("Master_User") == user
            and int(cur.get("Master_Port") or 0) == int(port)
            and cur.get("Using_Gtid") == "Slave_Pos"
            and cur.get("Slave_SQL_Running") == "Yes"
            and cur.get("Slave_IO_Running") in ("Yes", "Connecting")
        )
        if good:
            ret["comment"] = f"replicating from {name}"
            return ret
        old = None if cur is None else f"{cur.get('Master_Host')} ({cur.get('Slave_IO_State')})"
        if __opts__["test"]:
            ret.update(
                result=None,
                comment=f"would replicate from {name}",
                changes={"master": {"old": old, "new": name}},
            )
            return ret
        new = __salt__["mailcluster_db.replica_configure"](name, user, password, port)
    except CommandExecutionError as exc:
        ret.update(result=False, comment=str(exc))
        return ret
    if not new or new.get("Master_Host") != name or new.get("Slave_SQL_Running") != "Yes":
        ret.update(result=False, comment=f"replication did not start: {new}")
        return ret
    ret.update(changes={"master": {"old": old, "new": name}}, comment=f"replicating from {name}")
    return ret
