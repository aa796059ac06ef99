"""
The declared pillar schemas of the mail cluster, and the relations between one role's
parameters that JSON Schema cannot express.

Every role describes its pillar key in ``salt://<role>/parameters/schema.yaml`` (JSON Schema
draft 2020-12 written as YAML); a file may name another pillar key with ``x-pillar-key``
(``common/parameters/schema-mailcluster.yaml`` describes ``mailcluster``,
``selfheal/parameters/schema.yaml`` describes ``mailcluster:selfheal``). Every such file the
file server holds is picked up: a new role needs no change here.

- :py:func:`schemas`: the schema files found, by pillar key.
- :py:func:`merged`: a key's values as the role sees them (defaults.yaml, lookup, pillar).
- :py:func:`validate`: the problems of a pillar, each naming the full pillar key and what is
  allowed. Secret values are never repeated in a message.

``mailcluster.validate`` calls :py:func:`validate` and adds the relations across the topology.
docs/pillar.md describes the schemas and how to add one.
"""

import copy
import hashlib
import itertools
import json
import re

import salt.utils.dictupdate
import salt.utils.yaml
from salt.utils.data import traverse_dict

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:  # a minion without it refuses every pillar (mailcluster.validate)
    HAS_JSONSCHEMA = False

__virtualname__ = "mailcluster_schema"

#: why the pillar cannot be checked on a minion without the library
MISSING = (
    "the Python package jsonschema is missing on this minion: install it into the Python that "
    "runs salt-minion (Debian packages: apt install python3-jsonschema; Salt's onedir "
    "packages: salt-pip install jsonschema; docs/pillar.md)"
)

SCHEMA_RE = re.compile(r"^([a-z][a-z0-9_]*)/parameters/schema(-[a-z0-9_]+)?\.yaml$")


def __virtual__():
    if not HAS_JSONSCHEMA:
        return (False, MISSING)
    return __virtualname__


# --------------------------------------------------------------------------- loading
def _saltenv(saltenv):
    return saltenv or __opts__.get("saltenv") or "base"


def _files(saltenv):
    """{relative path: text} of every schema and defaults file, read once per process."""
    cache = __context__.setdefault("mailcluster_schema.files", {})
    if saltenv not in cache:
        paths = __salt__["cp.list_master"](saltenv=saltenv)
        wanted = [
            p
            for p in paths
            if SCHEMA_RE.match(p) or re.match(r"^[a-z][a-z0-9_]*/parameters/defaults\.yaml$", p)
        ]
        cache[saltenv] = {
            p: __salt__["cp.get_file_str"](f"salt://{p}", saltenv=saltenv) for p in wanted
        }
    return cache[saltenv]


def _load(saltenv):
    """[{key, role, file, schema}] and a list of load problems (a broken schema file)."""
    cache = __context__.setdefault("mailcluster_schema.parsed", {})
    if saltenv not in cache:
        cache[saltenv] = _parse(saltenv)
    return cache[saltenv]


def _parse(saltenv):
    found, problems = [], []
    for path, text in sorted(_files(saltenv).items()):
        match = SCHEMA_RE.match(path)
        if not match:
            continue
        try:
            schema = salt.utils.yaml.safe_load(text or "")
            jsonschema.Draft202012Validator.check_schema(schema)
        except Exception as exc:  # any parse or schema error: name the file, refuse the pillar
            text = " ".join(line.strip() for line in str(exc).splitlines()[:4])
            problems.append(f"salt://{path}: not a valid JSON Schema: {text}")
            continue
        key = schema.get("x-pillar-key") or match.group(1)
        digest = hashlib.sha256((text or "").encode()).hexdigest()
        found.append(
            {"key": key, "role": match.group(1), "file": path, "schema": schema, "digest": digest}
        )
    return found, problems


def schemas(saltenv=None):
    """
    The schema files the file server holds, by the pillar key each one describes.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_schema.schemas
    """
    found, problems = _load(_saltenv(saltenv))
    if problems:
        return {"problems": problems, **{s["key"]: s["file"] for s in found}}
    return {s["key"]: s["file"] for s in found}


def _defaults(role, saltenv):
    cache = __context__.setdefault("mailcluster_schema.defaults", {})
    if (saltenv, role) not in cache:
        text = _files(saltenv).get(f"{role}/parameters/defaults.yaml")
        cache[(saltenv, role)] = salt.utils.yaml.safe_load(text) if text else {}
    return cache[(saltenv, role)]


def merged(key, pillar=None, saltenv=None):
    """
    The values of pillar ``key`` as its role sees them: ``<role>/parameters/defaults.yaml``,
    then ``<key>:lookup``, then ``<key>`` (``mailcluster:selfheal``: defaults, then pillar).

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_schema.merged ha
    """
    pillar = __pillar__ if pillar is None else pillar
    saltenv = _saltenv(saltenv)
    role = next((s["role"] for s in _load(saltenv)[0] if s["key"] == key), key.split(":")[-1])
    data = copy.deepcopy(_defaults(role, saltenv) or {})
    own = copy.deepcopy(traverse_dict(pillar, key) or {})
    if not isinstance(own, dict):
        return data
    lookup = own.pop("lookup", None) if ":" not in key else None
    for layer in (lookup, own):
        if isinstance(layer, dict):
            data = salt.utils.dictupdate.merge(data, layer, merge_lists=False)
    return data


# --------------------------------------------------------------------------- messages
def _hidden(path, schema):
    return bool(schema.get("writeOnly")) or "secrets" in path


def _what(err):
    """What is allowed, in words, for the failing keyword of ``err``."""
    schema, val = err.schema, err.validator_value
    if isinstance(schema, dict) and schema.get("x-allowed"):
        return f"must be {schema['x-allowed']}"
    words = {
        "type": lambda: "must be " + " or ".join(val if isinstance(val, list) else [val]),
        "enum": lambda: "must be one of " + ", ".join(json.dumps(v) for v in val),
        "const": lambda: f"must be {json.dumps(val)}",
        "minimum": lambda: f"must be >= {val}",
        "maximum": lambda: f"must be <= {val}",
        "exclusiveMinimum": lambda: f"must be > {val}",
        "exclusiveMaximum": lambda: f"must be < {val}",
        "minLength": lambda: f"must be at least {val} characters long",
        "maxLength": lambda: f"must be at most {val} characters long",
        "minItems": lambda: f"must have at least {val} item(s)",
        "minProperties": lambda: f"must have at least {val} entr(y/ies)",
        "maxProperties": lambda: f"must have at most {val} entr(y/ies)",
        "uniqueItems": lambda: "must not list an item twice",
        "pattern": lambda: f"must match {val}",
        "format": lambda: (
            f"must be an {val} address" if val.startswith("ipv") else f"must be {val}"
        ),
        "not": lambda: "is not allowed here",
    }
    if err.validator in words:
        return words[err.validator]()
    if err.validator in ("anyOf", "oneOf") and err.context:
        return _what(jsonschema.exceptions.best_match(err.context))
    return f"is not valid ({err.validator})"


def _messages(err, root):
    path = [*root, *(str(p) for p in err.absolute_path)]
    key = ":".join(path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties":
        props = schema.get("properties") or {}
        extra = sorted(set(err.instance) - set(props))
        allowed = ", ".join(props) or "none"
        return [f"{key}:{name}: unknown key (allowed: {allowed})" for name in extra]
    if err.validator == "required":
        return [
            f"{key}:{name}: missing" for name in err.validator_value if name not in err.instance
        ]
    if err.validator == "dependentRequired":
        return [f"{key}: give {_pair(err)} together, or neither"]
    if "propertyNames" in err.absolute_schema_path:
        return [f"{key}:{err.instance}: not a valid key here ({_what(err)})"]
    got = ""
    if not _hidden(path, schema) and not isinstance(err.instance, dict | list):
        got = f" (got {json.dumps(err.instance, default=str)})"
    return [f"{key}: {_what(err)}{got}"]


def _pair(err):
    return " and ".join(sorted({k for k, v in err.validator_value.items() for k in [k, *v]}))


def _schema_errors(pillar, found):
    """The messages, and the pillar keys whose schema failed."""
    errors, failed = [], set()
    for entry in found:
        value = traverse_dict(pillar, entry["key"], default=_ABSENT)
        if value is _ABSENT:
            continue
        # the same value under another pillar dict (mapdata's {mailcluster: ...}) is checked
        # once per job: the mailcluster key is seconds of jsonschema at 10,000 domains
        errs = __salt__["mailcluster_memo.once"](
            "mailcluster_schema.errors",
            [value],
            lambda e=entry, v=value: __salt__["mailcluster_schema_check.errors"](
                e["schema"], v, e["digest"]
            ),
            extra=entry["file"],
        )
        for where, err in errs:
            errors.extend(_messages(err, [*entry["key"].split(":"), *where]))
        if errs:
            failed.add(entry["key"])
    return errors, failed


_ABSENT = object()


# --------------------------------------------------------------------------- relations
def _seconds(value):
    """A heartbeat duration (2, 0.5, '200ms', '2s') in seconds."""
    text = str(value).strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text[:-1] if text.endswith("s") else text)


def _where(pillar, key, name):
    """The pillar key that sets ``name`` of ``key`` (its lookup if only that does)."""
    own = traverse_dict(pillar, key) or {}
    if isinstance(own, dict) and name not in own and name in (own.get("lookup") or {}):
        return f"{key}:lookup:{name}"
    return f"{key}:{name}"


def _ha_relations(pillar, ha, errors):
    t = {k: _seconds(ha[k]) for k in ("keepalive", "warntime", "deadtime", "initdead")}
    at = {k: _where(pillar, "ha", k) for k in t}
    if t["keepalive"] >= t["warntime"]:
        errors.append(
            f"{at['keepalive']}: must be below warntime "
            f"({t['keepalive']:g} s >= {t['warntime']:g} s)"
        )
    if t["warntime"] >= t["deadtime"]:
        errors.append(
            f"{at['warntime']}: must be below deadtime ({t['warntime']:g} s >= {t['deadtime']:g} s)"
        )
    if t["initdead"] < 2 * t["deadtime"]:
        errors.append(
            f"{at['initdead']}: must be at least twice deadtime "
            f"({t['initdead']:g} s < 2 x {t['deadtime']:g} s)"
        )
    return t["deadtime"]


def _selfheal_relations(pillar, heal, deadtime, errors):
    key = "mailcluster:selfheal"
    if heal["witness_wait"] <= deadtime:
        errors.append(
            f"{key}:witness_wait: must be above ha:deadtime ({heal['witness_wait']:g} s <= "
            f"{deadtime:g} s: the peer's heartbeat cannot report the node dead in time)"
        )
    dog = heal.get("watchdog") or {}
    if dog.get("enabled", True):
        if dog["deaf_after"] <= dog["touch_interval"]:
            errors.append(
                f"{key}:watchdog:deaf_after: must be above touch_interval "
                f"({dog['deaf_after']} s <= {dog['touch_interval']} s: every minion looks deaf)"
            )
        if dog["check_interval"] >= dog["deaf_after"]:
            errors.append(
                f"{key}:watchdog:check_interval: must be below deaf_after "
                f"({dog['check_interval']} s >= {dog['deaf_after']} s)"
            )


def _storage_relations(pillar, st, errors):
    d, o = st["drbd"], st["ocfs2"]
    timeouts = o["timeouts"]
    noticed = d["ping_int"] + d["ping_timeout"] / 10
    evict_half = timeouts["dead_threshold"] - 1  # half of o2cb's (threshold - 1) * 2 s
    if st["backend"] == "drbd_ocfs2":
        if noticed >= evict_half:
            errors.append(
                f"{_where(pillar, 'storage', 'drbd')}:ping_int: DRBD notices a dead peer after "
                f"ping_int + ping_timeout/10 = {noticed:g} s; must be below half of o2cb's "
                f"eviction time ((ocfs2:timeouts:dead_threshold - 1) x 2 s = {2 * evict_half} s) "
                "or the survivor fences itself (salt/storage/pillar.example)"
            )
        if d["protocol"] != "C":
            errors.append("storage:drbd:protocol: must be C with drbd_ocfs2 (dual primary)")
        nodes = st.get("nodes") or {}
        if o["slots"] < len(nodes):
            errors.append(
                f"storage:ocfs2:slots: must be at least the number of storage:nodes "
                f"({o['slots']} < {len(nodes)})"
            )
    if st["backend"] == "drbd_ocfs2" and d["port"] == o["port"]:
        errors.append(f"storage:drbd:port: must differ from storage:ocfs2:port ({o['port']})")
    if timeouts["keepalive_delay_ms"] >= timeouts["idle_timeout_ms"]:
        errors.append(
            "storage:ocfs2:timeouts:keepalive_delay_ms: must be below idle_timeout_ms "
            f"({timeouts['keepalive_delay_ms']} >= {timeouts['idle_timeout_ms']})"
        )
    _unique(st.get("nodes") or {}, "number", "storage:nodes", errors)
    _unique(st.get("nodes") or {}, "address", "storage:nodes", errors)


def _unique(nodes, field, key, errors):
    seen = {}
    for name in sorted(nodes):
        value = (nodes[name] or {}).get(field)
        if value is None:
            continue
        if value in seen:
            errors.append(f"{key}:{name}:{field}: {value} is already used by {seen[value]}")
        seen.setdefault(value, f"{key}:{name}:{field}")


def _dns_relations(dns, errors):
    refresh, retry, expire = dns.get("refresh", 300), dns.get("retry", 60), dns.get("expire")
    if retry >= refresh:
        errors.append(f"dns:retry: must be below dns:refresh ({retry} >= {refresh})")
    if expire is not None and expire <= refresh + retry:
        errors.append(f"dns:expire: must be above refresh + retry ({expire} <= {refresh + retry})")


def _common_relations(common, errors):
    tls = common.get("tls") or {}
    if tls.get("days_remaining", 0) >= tls.get("days_valid", 1):
        errors.append(
            f"common:tls:days_remaining: must be below days_valid "
            f"({tls['days_remaining']} >= {tls['days_valid']}: renewed on every run)"
        )


#: dovecot scheme of the hashes each Postfix Admin `encrypt` setting writes
PFA_SCHEMES = {
    "php_crypt:SHA512": "SHA512-CRYPT",
    "php_crypt:SHA256": "SHA256-CRYPT",
    "php_crypt:BLOWFISH": "BLF-CRYPT",
    "dovecot:SHA512-CRYPT": "SHA512-CRYPT",
}


def _mail_relations(mail, storage, web, errors, mail_nodes=True):
    vmail = mail["vmail"]
    mount = vmail.get("store_mount")
    # the guard and the store meet only on a mail node: a storage-only pair (the vm tier's)
    # may mount its store elsewhere
    if mount and mail_nodes and mount != storage["mount_point"]:
        errors.append(
            f"mail:vmail:store_mount: must be storage:mount_point ({storage['mount_point']}) or "
            f"'' (the guard waits for {mount}, which the storage role never mounts)"
        )
    if mount and not (vmail["maildirs"] + "/").startswith(mount.rstrip("/") + "/"):
        errors.append(f"mail:vmail:maildirs: must lie below mail:vmail:store_mount ({mount})")
    want = PFA_SCHEMES.get(web["postfixadmin"]["encrypt"])
    if want and want != mail["dovecot"]["pass_scheme"]:
        errors.append(
            f"mail:dovecot:pass_scheme: must be {want} to read the hashes web:postfixadmin:encrypt "
            f"({web['postfixadmin']['encrypt']}) writes"
        )


def _rspamd_relations(pillar, rs, errors):
    """Thresholds in order (reject > add_header > greylist); per-domain selectors of served
    domains only."""
    act = rs.get("actions") or {}
    order = [k for k in ("reject", "add_header", "greylist") if act.get(k) is not None]
    for high, low in itertools.pairwise(order):
        if act[high] <= act[low]:
            errors.append(
                f"{_where(pillar, 'rspamd', 'actions')}:{high}: must be above {low} "
                f"({act[high]:g} <= {act[low]:g}: {low} would never apply)"
            )
    domains = (pillar.get("mailcluster") or {}).get("domains") or {}
    for domain in sorted((rs.get("dkim") or {}).get("domains") or {}):
        if domain not in domains:
            errors.append(
                f"rspamd:dkim:domains:{domain}: not a domain of mailcluster:domains "
                f"(known: {', '.join(sorted(domains)) or 'none'})"
            )


def _relations(pillar, saltenv, errors, failed=frozenset()):
    """The relations between one role's parameters (and the self-healing timings against
    heartbeat's), on the merged values, for the keys whose schema passed (types are right)."""
    try:
        deadtime = None
        if "ha" not in failed:
            deadtime = _ha_relations(pillar, merged("ha", pillar, saltenv), errors)
        if "mailcluster:selfheal" not in failed and deadtime is not None:
            heal = merged("mailcluster:selfheal", pillar, saltenv)
            _selfheal_relations(pillar, heal, deadtime, errors)
        if "storage" not in failed:
            _storage_relations(pillar, merged("storage", pillar, saltenv), errors)
        if "dns" not in failed:
            _dns_relations(merged("dns", pillar, saltenv), errors)
        if not {"mail", "storage", "web"} & failed:
            args = (merged(k, pillar, saltenv) for k in ("mail", "storage", "web"))
            nodes = ((pillar.get("mailcluster") or {}).get("nodes") or {}).values()
            has_mail = any("mail" in ((n or {}).get("roles") or []) for n in nodes)
            _mail_relations(*args, errors, mail_nodes=has_mail)
        if "common" not in failed:
            _common_relations(merged("common", pillar, saltenv), errors)
        if "rspamd" not in failed:
            _rspamd_relations(pillar, merged("rspamd", pillar, saltenv), errors)
    except KeyError as exc:  # a defaults.yaml without the key: refuse rather than guess
        errors.append(f"{exc.args[0]}: missing from its role's defaults.yaml (cannot check)")


def validate(pillar=None, saltenv=None, relations=True):
    """
    The problems of ``pillar`` (this minion's by default) against every declared schema and,
    if ``relations`` is true, between one role's parameters (for the keys whose schema
    passed), each starting with the full pillar key. Empty list: valid.

    CLI Example:

    .. code-block:: bash

        salt '*' mailcluster_schema.validate
    """
    pillar = __pillar__ if pillar is None else pillar
    saltenv = _saltenv(saltenv)
    # one highstate checks the same pillar many times (every role's map): once is enough;
    # recognised by identity (hashing a 10,000-domain pillar took longer than checking it)
    entry = __salt__["mailcluster_memo.per_pillar"](
        "mailcluster_schema.validate",
        pillar,
        lambda: {"schema": _check_schemas(pillar, saltenv)},
        extra=saltenv,
    )
    errors, failed, ok = entry["schema"]
    if relations and ok and "relations" not in entry:
        entry["relations"] = []
        _relations(pillar, saltenv, entry["relations"], failed)
    return list(errors) + (list(entry.get("relations", [])) if relations else [])


def _check_schemas(pillar, saltenv):
    """(messages, keys whose schema failed, whether relations can be checked)."""
    found, problems = _load(saltenv)
    errors = list(problems)
    if not found:
        errors.append(
            "mailcluster: no pillar schema found (salt://*/parameters/schema.yaml on the file "
            f"server, saltenv {saltenv})"
        )
    schema_errors, failed = _schema_errors(pillar, found)
    return errors + schema_errors, failed, bool(found) and not problems
