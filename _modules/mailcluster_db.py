"""
The mail cluster's database: Postfix Admin's rows from the ``mailcluster`` pillar, the
password hashes they hold, and MariaDB GTID replication.

- :py:func:`db_sync` keeps Postfix Admin's ``domain``, ``mailbox`` and ``alias`` rows in step
  with pillar in one transaction (the state ``mailcluster.domains_synced``).
- :py:func:`password_hash` and :py:func:`stable_hash` make SHA512-CRYPT hashes,
  :py:func:`native_password_hash` MariaDB's hash of an SQL user's password.
- :py:func:`replica_status` and :py:func:`replica_configure` drive GTID replication (the state
  ``mailcluster.replica_running``).

It reads the pillar itself and needs no other module: it talks to the local MariaDB through
its socket (pymysql).
"""

import hashlib
import json
import logging
import os
import warnings

import salt.utils.files
from salt.exceptions import CommandExecutionError
from salt.utils.data import traverse_dict

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, still shipped with Debian's python3.11

    HAS_CRYPT = True
except ImportError:  # pragma: no cover
    HAS_CRYPT = False

try:
    import pymysql

    HAS_PYMYSQL = True
except ImportError:  # pragma: no cover
    HAS_PYMYSQL = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_db"

PILLAR_KEY = "mailcluster"


def __virtual__():
    if not HAS_CRYPT:
        return (False, "the crypt module is missing (SHA512-CRYPT hashes need Python's crypt)")
    if not HAS_PYMYSQL:
        return (False, "pymysql is not installed (pip install pymysql)")
    return __virtualname__


def _connect(database=None):
    try:
        return pymysql.connect(
            unix_socket="/run/mysqld/mysqld.sock",
            user="root",
            database=database,
            autocommit=False,
            charset="utf8mb4",
        )
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(f"cannot connect to MariaDB: {exc}") from exc


def password_hash(password):
    """
    A SHA512-CRYPT hash (the scheme dovecot and Postfix Admin's ``php_crypt:SHA512`` share).

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster_db.password_hash secret
    """
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def stable_hash(password):
    """
    A SHA512-CRYPT hash whose salt derives from the password, so that a config file holding it
    does not change on every run (for Postfix Admin's ``setup_password``).

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster_db.stable_hash secret
    """
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256(f"mailcluster:{password}".encode()).digest()
    salt_text = "".join(alphabet[b % 64] for b in digest[:16])
    return crypt.crypt(password, f"$6${salt_text}$")


def native_password_hash(password):
    """
    MariaDB's ``mysql_native_password`` hash of ``password`` (what ``PASSWORD()`` returns):
    the SQL users are made and reset with it (``mysql_user.present``'s ``password_hash``), so
    the statements MariaDB writes to its binary log, and replicates, carry no plaintext.

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster_db.native_password_hash secret
    """
    inner = hashlib.sha1(password.encode()).digest()  # SHA1 twice: MariaDB's own scheme
    return "*" + hashlib.sha1(inner).hexdigest().upper()


def _password_ok(password, stored, pw_cache):
    if not stored:
        return False
    token = hashlib.sha256(f"{stored}\0{password}".encode()).hexdigest()
    if pw_cache.get(stored) == token:
        return True
    if crypt.crypt(password, stored) == stored:
        pw_cache[stored] = token
        return True
    return False


def _desired_rows():
    mc = __pillar__.get(PILLAR_KEY) or {}
    pw = traverse_dict(mc, "secrets:mailboxes") or {}
    domains, boxes, aliases = {}, {}, {}
    for dom, conf in sorted((mc.get("domains") or {}).items()):
        conf = conf or {}
        if conf.get("absent"):
            continue
        domains[dom] = {"description": conf.get("description", ""), "active": 1}
        for box in conf.get("mailboxes") or []:
            addr = f"{box['name']}@{dom}"
            if box.get("absent"):
                boxes[addr] = None
                continue
            boxes[addr] = {
                "name": box.get("full_name", box["name"]),
                "quota": int(box.get("quota_mb", 0)) * 1024 * 1024,
                "active": 0 if box.get("disabled") else 1,
                "password": pw.get(addr),
                "password_hash": box.get("password_hash"),
                "local_part": box["name"],
                "domain": dom,
            }
        for local, goto in (conf.get("aliases") or {}).items():
            addr = f"{local}@{dom}"
            if goto is None or (isinstance(goto, dict) and goto.get("absent")):
                aliases[addr] = None
                continue
            targets = goto if isinstance(goto, list) else [goto]
            aliases[addr] = ",".join(targets)
    return domains, boxes, aliases


def db_sync(database="postfixadmin", test=False, cache_file="/var/lib/mailcluster/pwcheck.json"):
    """
    Make Postfix Admin's ``domain``, ``mailbox`` and ``alias`` rows match pillar in one
    transaction: add what is missing, update what differs, delete mailboxes and aliases marked
    ``absent``. Rows pillar does not mention (made in Postfix Admin) are left alone. Returns
    the list of changes (``[]``: nothing to do).

    CLI Example:

    .. code-block:: bash

        salt ns1 mailcluster_db.db_sync test=True
    """
    domains, boxes, aliases = _desired_rows()
    try:
        with open(cache_file, encoding="utf-8") as fh:
            pw_cache = json.load(fh)
    except (OSError, ValueError):
        pw_cache = {}
    conn = _connect(database)
    changes = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT domain, description, active FROM domain")
            have_dom = {r[0]: r for r in cur.fetchall()}
            cur.execute("SELECT username, password, name, quota, active FROM mailbox")
            have_box = {r[0]: r for r in cur.fetchall()}
            cur.execute("SELECT address, goto, active FROM alias")
            have_alias = {r[0]: r for r in cur.fetchall()}
            sql = []
            for dom, want in domains.items():
                row = have_dom.get(dom)
                if row is None:
                    changes.append(f"domain {dom}: add")
                    sql.append(
                        (
                            "INSERT INTO domain (domain, description, aliases, mailboxes, maxquota,"
                            " quota, transport, backupmx, created, modified, active)"
                            " VALUES (%s, %s, 0, 0, 0, 0, 'virtual', 0, NOW(), NOW(), %s)",
                            (dom, want["description"], want["active"]),
                        )
                    )
                elif (row[1] or "", int(row[2])) != (want["description"], want["active"]):
                    changes.append(f"domain {dom}: update")
                    sql.append(
                        (
                            "UPDATE domain SET description=%s, active=%s, modified=NOW()"
                            " WHERE domain=%s",
                            (want["description"], want["active"], dom),
                        )
                    )
            for addr, want in boxes.items():
                row = have_box.get(addr)
                if want is None:
                    if row is not None:
                        changes.append(f"mailbox {addr}: remove")
                        sql.append(("DELETE FROM mailbox WHERE username=%s", (addr,)))
                        if addr in have_alias and have_alias[addr][1] == addr:
                            sql.append(("DELETE FROM alias WHERE address=%s", (addr,)))
                    continue
                if want["password_hash"]:
                    pw_ok = row is not None and row[1] == want["password_hash"]
                    new_hash = want["password_hash"]
                else:
                    pw_ok = row is not None and _password_ok(want["password"], row[1], pw_cache)
                    new_hash = None if pw_ok else password_hash(want["password"])
                if row is None:
                    changes.append(f"mailbox {addr}: add")
                    sql.append(
                        (
                            "INSERT INTO mailbox (username, password, name, maildir, quota,"
                            " local_part, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s, NOW(), NOW(), %s)",
                            (
                                addr,
                                new_hash,
                                want["name"],
                                f"{want['domain']}/{want['local_part']}/",
                                want["quota"],
                                want["local_part"],
                                want["domain"],
                                want["active"],
                            ),
                        )
                    )
                else:
                    if (row[2], int(row[3]), int(row[4])) != (
                        want["name"],
                        want["quota"],
                        want["active"],
                    ):
                        changes.append(f"mailbox {addr}: update")
                        sql.append(
                            (
                                "UPDATE mailbox SET name=%s, quota=%s, active=%s, modified=NOW()"
                                " WHERE username=%s",
                                (want["name"], want["quota"], want["active"], addr),
                            )
                        )
                    if not pw_ok:
                        changes.append(f"mailbox {addr}: password")
                        sql.append(
                            (
                                "UPDATE mailbox SET password=%s, modified=NOW() WHERE username=%s",
                                (new_hash, addr),
                            )
                        )
                # Postfix Admin gives every mailbox an alias to itself
                if addr not in have_alias and addr not in aliases:
                    sql.append(
                        (
                            "INSERT INTO alias (address, goto, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, NOW(), NOW(), 1)",
                            (addr, addr, want["domain"]),
                        )
                    )
            for addr, goto in aliases.items():
                row = have_alias.get(addr)
                if goto is None:
                    if row is not None:
                        changes.append(f"alias {addr}: remove")
                        sql.append(("DELETE FROM alias WHERE address=%s", (addr,)))
                    continue
                if row is None:
                    changes.append(f"alias {addr}: add")
                    sql.append(
                        (
                            "INSERT INTO alias (address, goto, domain, created, modified, active)"
                            " VALUES (%s, %s, %s, NOW(), NOW(), 1)",
                            (addr, goto, addr.split("@", 1)[1]),
                        )
                    )
                elif (row[1], int(row[2])) != (goto, 1):
                    changes.append(f"alias {addr}: update")
                    sql.append(
                        (
                            "UPDATE alias SET goto=%s, active=1, modified=NOW() WHERE address=%s",
                            (goto, addr),
                        )
                    )
            if test or not sql:
                conn.rollback()
            else:
                for stmt, args in sql:
                    cur.execute(stmt, args)
                conn.commit()
    except pymysql.MySQLError as exc:
        conn.rollback()
        raise CommandExecutionError(f"database {database}: {exc}") from exc
    finally:
        conn.close()
    if not test:
        try:
            os.makedirs(os.path.dirname(cache_file), mode=0o700, exist_ok=True)
            with salt.utils.files.fopen(cache_file, "w") as fh:
                json.dump(pw_cache, fh)
            os.chmod(cache_file, 0o600)
        except OSError as exc:
            log.warning("cannot write %s: %s", cache_file, exc)
    return changes


def replica_status():
    """
    ``SHOW SLAVE STATUS`` of this MariaDB as a dict, or None when it is not a replica.

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster_db.replica_status
    """
    conn = _connect()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(str(exc)) from exc
    finally:
        conn.close()
    if not row:
        return None
    return {k: (v if isinstance(v, (int, str, type(None))) else str(v)) for k, v in row.items()}


def replica_configure(master_host, user, password, port=3306):
    """
    Point this MariaDB at ``master_host`` with GTID (``slave_pos``) and start replication.

    CLI Example:

    .. code-block:: bash

        salt ns2 mailcluster_db.replica_configure 10.88.0.21 repl secret
    """
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute("STOP SLAVE")
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s,"
                " MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=2, MASTER_USE_GTID=slave_pos",
                (master_host, int(port), user, password),
            )
            cur.execute("START SLAVE")
    except pymysql.MySQLError as exc:
        raise CommandExecutionError(str(exc)) from exc
    finally:
        conn.close()
    return replica_status()
