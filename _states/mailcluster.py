"""
States for the mail cluster's pillar-driven data; the work is done by the execution modules
``mailcluster`` (pillar check), ``mailcluster_dns`` (zones) and ``mailcluster_db`` (rows,
replication).

- ``pillar_valid``: the pillar is valid (``mailcluster.validate``: the declared schemas of
  every role's key and the relations between keys, docs/pillar.md).
- ``zones_synced``: zone files on the DNS primary match pillar (serial bumped only on change).
- ``domains_synced``: Postfix Admin's domain/mailbox/alias rows match pillar.
- ``replica_running``: this MariaDB replicates from the primary with GTID.

The three that change something give their read, act and read-back to the shared state
skeleton (``_states/mc_flow.py``), like the drbd, o2cb and heartbeat states.
"""

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
    if "mc_flow.converge" not in __states__:
        return (
            False,
            "the mailcluster states need the shared skeleton (_states/mc_flow.py not loaded)",
        )
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def pillar_valid(name):
    """
    The pillar is valid (``mailcluster`` and every role's key, against their declared schemas,
    and the relations between keys); otherwise fail, naming every bad key and what is allowed.
    Run it first with ``failhard`` so that nothing changes on a node whose pillar is bad.

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

    def sync(test):
        return __salt__["mailcluster_dns.dns_sync"](name, test=test, serial_floor=serial_floor)

    def plan():
        changed = sync(True)["changed"]
        if not changed:
            return {"result": True, "comment": "all zones match pillar"}
        return {
            "changes": {
                z: {"old": p.get("old_serial") or None, "new": p["serial"]}
                for z, p in changed.items()
            },
            "would": f"{len(changed)} zone(s) would be written",
        }

    def act(step):
        done = sync(False)
        # report what was written, which a failed zone check makes less than the plan
        step["changes"] = done["changed"]
        step["errors"] = done["errors"]
        step["done"] = f"{len(done['changed'])} zone(s) written"

    def confirm(step):
        if step["errors"]:
            return "zone check failed, old zone kept: " + "; ".join(
                f"{z}: {e}" for z, e in step["errors"].items()
            )
        left = sync(True)["changed"]
        return f"zones still differ: {sorted(left)}" if left else None

    return __states__["mc_flow.converge"](name, plan, act, confirm, report_unconfirmed=True)


def domains_synced(name, database="postfixadmin"):
    """
    Postfix Admin's tables in ``database`` hold pillar's domains, mailboxes and aliases.

    .. code-block:: yaml

        db-domains:
          mailcluster.domains_synced:
            - name: postfixadmin
    """

    def plan():
        todo = __salt__["mailcluster_db.db_sync"](database, test=True)
        if not todo:
            return {"result": True, "comment": "domains, mailboxes and aliases match pillar"}
        return {
            "changes": {"rows": {"old": None, "new": todo}},
            "would": f"{len(todo)} row change(s) would be made",
        }

    def act(step):
        done = __salt__["mailcluster_db.db_sync"](database)
        step["changes"] = {"rows": {"old": None, "new": done}}
        step["done"] = f"{len(done)} row change(s) made"

    def confirm(_step):
        left = __salt__["mailcluster_db.db_sync"](database, test=True)
        return f"still differs after update: {left}" if left else None

    return __states__["mc_flow.converge"](name, plan, act, confirm, report_unconfirmed=True)


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

    def plan():
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
            return {"result": True, "comment": f"replicating from {name}"}
        old = None if cur is None else f"{cur.get('Master_Host')} ({cur.get('Slave_IO_State')})"
        return {
            "changes": {"master": {"old": old, "new": name}},
            "would": f"would replicate from {name}",
            "done": f"replicating from {name}",
        }

    def act(step):
        step["new"] = __salt__["mailcluster_db.replica_configure"](name, user, password, port)

    def confirm(step):
        new = step["new"]
        if not new or new.get("Master_Host") != name or new.get("Slave_SQL_Running") != "Yes":
            return f"replication did not start: {new}"
        return None

    return __states__["mc_flow.converge"](name, plan, act, confirm)
