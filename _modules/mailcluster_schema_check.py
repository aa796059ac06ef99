"""
Running one declared pillar schema over a value, with what passed before remembered (issue
14.2): jsonschema took 5.6 s over 1,000 domains of 10 mailboxes, about a minute at 10,000,
on every node at every highstate, for a pillar in which one domain had changed.

A mapping marked ``x-check-each: true`` in a schema (``mailcluster:domains``) is checked entry
by entry: an entry whose content (JSON, keys sorted) passed the same schema file before is not
checked again. What passed is kept in the minion's cache directory
(``mailcluster/schema-passed.json``, digests only: no pillar value is written), per schema
file digest, so a changed schema checks every entry again. The schema and the messages stay
with ``mailcluster_schema``, which calls :py:func:`errors`.
"""

import hashlib
import json
import logging
import os
import tempfile

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False

log = logging.getLogger(__name__)

__virtualname__ = "mailcluster_schema_check"

CACHE = os.path.join("mailcluster", "schema-passed.json")
#: schema versions whose passed entries are kept
KEEP = 4


def __virtual__():
    if not HAS_JSONSCHEMA:
        return (False, "mailcluster_schema_check needs the Python package jsonschema")
    return __virtualname__


def _validator(schema):
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _sorted(errs):
    return sorted(errs, key=lambda e: [str(p) for p in e.path])


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _cache_path():
    return os.path.join(__opts__["cachedir"], CACHE)


def _read_cache():
    try:
        with open(_cache_path(), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _write_cache(data):
    path = _cache_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".schema-passed.", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:  # only costs time at the next check
        log.warning("cannot write %s: %s", path, exc)


def errors(schema, value, schema_id):
    """
    ``[(path, error)]``: the jsonschema errors of ``value`` against ``schema``, each with the
    path (a list) of the entry it was found in, below ``value`` (``[]`` for the value itself).
    ``schema_id`` names the schema's version (the digest of its file): entries that passed it
    before are not checked again. Python callers only (the errors are jsonschema objects).

    CLI Example:

    .. code-block:: bash

        # from Python only: __salt__["mailcluster_schema_check.errors"](schema, value, digest)
        salt-call mailcluster_schema_check.passed
    """
    each = {
        prop: sub
        for prop, sub in (schema.get("properties") or {}).items()
        if isinstance(sub, dict) and sub.get("x-check-each")
    }
    mapping = {p for p in each if isinstance(value, dict) and isinstance(value.get(p), dict)}
    if not mapping:
        return [([], e) for e in _sorted(_validator(schema).iter_errors(value))]
    # the value without the entries (its other keys, and the mapping's own type), then the
    # entries one by one against the mapping's additionalProperties
    rest = {k: ({} if k in mapping else v) for k, v in value.items()}
    out = [([], e) for e in _sorted(_validator(schema).iter_errors(rest))]
    cache = _read_cache()
    known = set(cache.get(schema_id) or [])
    passed = set()
    for prop in sorted(mapping):
        entry_schema = {
            **each[prop].get("additionalProperties", {}),
            "$defs": schema.get("$defs", {}),
        }
        entry_schema.pop("x-check-each", None)
        check = _validator(entry_schema)
        for name, conf in value[prop].items():
            digest = _digest(conf)
            if digest in known:
                passed.add(digest)
                continue
            errs = _sorted(check.iter_errors(conf))
            out += [([prop, name], e) for e in errs]
            if not errs:
                passed.add(digest)
    if passed != known:
        cache.pop(schema_id, None)
        cache[schema_id] = sorted(passed)
        # a schema edited many times leaves old digests: the latest few schemas are kept
        _write_cache(dict(list(cache.items())[-KEEP:]))
    return sorted(out, key=lambda pe: [*map(str, pe[0]), *(str(p) for p in pe[1].path)])


def passed():
    """
    How many entries' digests the cache holds as passed, per schema digest.

    CLI Example:

    .. code-block:: bash

        salt-call mailcluster_schema_check.passed
    """
    return {k: len(v) for k, v in _read_cache().items()}
