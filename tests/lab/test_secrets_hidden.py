"""No value under pillar ``mailcluster:secrets`` shows in a highstate's output, the master's job
cache, any node's process list or any log (issue 12, deliverable 4).

The lab test takes the secrets from pillar as it is at run time (``salt-call --no-return-event
pillar.get ... unmask=True`` on each node: a ``salt pillar.get`` would put them in the job
cache), makes an apply redo everything that carries one (in every managed file holding a
secret, the secret replaced by a placeholder, so that a diff would show the line with the
value; the SQL users' passwords changed, Postfix Admin's admin row deleted, the replica pointed
at a wrong user), and runs ``state.apply test=True`` and then ``state.apply`` on all nodes
while every node (and the master) records each command line it runs every 0.1 s. Then it
scans the two outputs, the job cache (``jobs.lookup_jid`` and the raw files the master wrote
meanwhile), the command lines, the log files' new bytes under /var/log (salt, syslog, mail.log,
...) and in MariaDB's binary and relay logs, and the journal since the start.

The scan is proven on every run: a canary value, handled as one more secret, is planted in the
process list, the journal, a log file and the job cache of each node; each must be found there.
A hit is reported as the secret's pillar key and the place, never with the value.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import pathlib
import re
import secrets as pysecrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from _roles_helpers import salt_call_json

PROBE = ["python3", "/srv/mailcluster/tests/lab/_secrets_probe.py"]
NODES = ["salt", "mx1", "mx2", "ns1", "ns2"]
MASTER = "salt"
SAMPLES = "/tmp/mc-secret-scan.ps"
STOP = "/tmp/mc-secret-scan.stop"
#: what the secrets in the managed files are replaced with before the apply (not a secret)
MARK = "mc-secret-scan-scrambled"
#: leaves under mailcluster:secrets that are public by nature (certificates, algorithm names)
PUBLIC_LEAVES = {"cert", "algorithm"}
#: a multi-line value (a PEM key) is looked for line by line, lines at least this long
MIN_LINE = 16
#: shorter single values would match by chance (none in the lab pillar is that short)
MIN_VALUE = 6


# ----- the scanner (pure: proven without a lab by the tests right below) -------------------------


def secret_needles(tree: dict, prefix: str = "secrets") -> tuple[dict[str, str], list[str]]:
    """``{needle: pillar key}`` for every secret leaf, and the keys left out (public or too
    short). A multi-line value gives one needle per line of MIN_LINE+ characters."""
    needles: dict[str, str] = {}
    skipped: list[str] = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, val in node.items():
                walk(val, f"{path}:{key}")
            return
        if isinstance(node, list):
            for i, val in enumerate(node):
                walk(val, f"{path}:{i}")
            return
        if path.rsplit(":", 1)[-1] in PUBLIC_LEAVES or not isinstance(node, str):
            skipped.append(path)
            return
        lines = [ln.strip() for ln in node.splitlines()]
        if len(lines) > 1:
            # the PEM armour ("-----BEGIN PRIVATE KEY-----") is no secret
            found = [ln for ln in lines if len(ln) >= MIN_LINE and not ln.startswith("-----")]
        else:
            found = [node.strip()] if len(node.strip()) >= MIN_VALUE else []
        if not found:
            skipped.append(path)
        for i, ln in enumerate(found):
            needles[ln] = path if len(found) == 1 else f"{path} (line {i + 1})"

    walk(tree, prefix)
    return needles, skipped


def _forms(needle: str) -> set[bytes]:
    """The needle as it may be written: raw, JSON-escaped, base64-wrapped PEM lines aside."""
    forms = {needle, json.dumps(needle)[1:-1]}
    return {f.encode() for f in forms}


def scan(needles: dict[str, str], sources: dict[str, bytes]) -> list[str]:
    """``"<pillar key> in <source>"`` for each needle found in each source (no values)."""
    hits = []
    for where, data in sorted(sources.items()):
        for needle, key in needles.items():
            if any(form in data for form in _forms(needle)):
                hits.append(f"{key} in {where}")
    return hits


PLANTED = "lab-rc-deskey-0123456789ab"
QUOTED = 'pw"with\\quote'


@pytest.mark.parametrize(
    "value,text,found",
    [
        (PLANTED, f"-    $config['des_key'] = '{PLANTED}';".encode(), True),
        (QUOTED, json.dumps({"diff": f"+password = {QUOTED}"}).encode(), True),
        (PLANTED, b"\x93\xa5diff\xda\x00\x1a" + PLANTED.encode(), True),
        (PLANTED, PLANTED[:-1].encode() + b" x", False),
        (PLANTED, b"nothing to see", False),
    ],
    ids=["diff", "json-escaped", "msgpack", "near-miss", "clean"],
)
def test_scan_finds_planted_values(value, text, found):
    hits = scan({value: "secrets:roundcube:des_key"}, {"out": text})
    assert hits == (["secrets:roundcube:des_key in out"] if found else [])
    assert all(value not in h for h in hits)


def test_needles_cover_leaves_lines_and_skip_public():
    tree = {
        "db": {"postfix": "lab-postfix-c0d514f566"},
        "tsig": {
            "algorithm": "hmac-sha256",
            "secret": "U5JZ1fz8cm8KFWUuBxx6b/wsocmTPfpckWe0JSnrvsc=",
        },
        "ca": {
            "cert": "-----BEGIN CERTIFICATE-----\nMIIDXz\n",
            "key": "-----BEGIN X-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nshort\n-----END X-----\n",
        },
        "n": 3,
        "mailboxes": {"a@b.test": "pw"},
    }
    needles, skipped = secret_needles(tree)
    assert needles == {
        "lab-postfix-c0d514f566": "secrets:db:postfix",
        "U5JZ1fz8cm8KFWUuBxx6b/wsocmTPfpckWe0JSnrvsc=": "secrets:tsig:secret",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC": "secrets:ca:key",
    }
    assert sorted(skipped) == [
        "secrets:ca:cert",
        "secrets:mailboxes:a@b.test",
        "secrets:n",
        "secrets:tsig:algorithm",
    ]


def test_sql_users_hash_is_mariadbs():
    """db.users gives MariaDB the hash, not the password (the binary log holds the statement):
    it must be PASSWORD()'s, as MariaDB 10.11 of the lab answered for 'x'."""
    path = pathlib.Path(__file__).parents[2] / "_modules" / "mailcluster_db.py"
    spec = importlib.util.spec_from_file_location("mailcluster_db_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.native_password_hash("x") == "*B69027D44F6E5EDC07F1AEAD1477967B16F28227"


# ----- the lab test ---------------------------------------------------------------------------


def _probe(lab, node, *args, stdin=None, timeout=300):
    res = lab.lab.run(node, [*PROBE, *args], capture=True, timeout=timeout, input=stdin)
    assert res.returncode == 0, f"probe {args[0]} on {node}: {res.stderr[-2000:]}"
    return json.loads(res.stdout or "null")


def _parallel(fn, nodes):
    with ThreadPoolExecutor(len(nodes)) as pool:
        return dict(zip(nodes, pool.map(fn, nodes), strict=True))


def _pillar_secrets(lab):
    """Every node's secrets pillar (salt-call without return event: the answer stays off the
    master's job cache; unmask: Salt 3008.4 masks pillar.get's output)."""
    needles, skipped = {}, set()

    def one(node):
        def get(key):
            return salt_call_json(lab, node, "pillar.get", key, "unmask=True", timeout=600)

        return get("mailcluster:secrets") or {}, get("storage:drbd:shared_secret") or ""

    for mc, drbd in _parallel(one, NODES).values():
        got, left = secret_needles(mc)
        if drbd:
            got[drbd] = "storage:drbd:shared_secret"
        needles.update(got)
        skipped.update(left)
    # Salt 3008.4 masks pillar output unless asked (unmask=True)
    assert "*" * 10 not in needles, "pillar.get returned masked values"
    return needles, sorted(skipped)


def _lowstates(lab):
    """Per node: its highstate's low chunks (they hold secrets: kept in this process only)."""

    def one(node):
        low = salt_call_json(lab, node, "state.show_lowstate", timeout=600)
        errors = [c for c in low if not isinstance(c, dict)]
        assert not errors, f"{node}'s highstate does not render ({len(errors)} errors)"
        return low

    return _parallel(one, NODES)


def _secret_files(lab, lows, needles):
    """Per node: the files its highstate manages that hold a secret now."""

    def one(node):
        low = lows[node]
        names = sorted(
            {c["name"] for c in low if isinstance(c, dict) and c.get("state") == "file"} - {None}
        )
        names = [n for n in names if isinstance(n, str) and n.startswith("/")]
        content = _probe(lab, node, "read", *names) if names else {}
        return sorted(
            path for path, b64 in content.items() if scan(needles, {path: base64.b64decode(b64)})
        )

    return _parallel(one, NODES)


def _mysql(lab, node, sql):
    res = lab.run(node, "mysql", "-N", "-e", sql)
    assert res.returncode == 0, f"mysql on {node}: {res.stderr}"
    return res.stdout


def _perturb_db(lab, lows):
    """The apply must set the SQL users' passwords (every user a mysql_user state of ns1 makes),
    re-add the admin, re-point the replica."""
    throwaway = "mc-scan-" + uuid.uuid4().hex[:12]  # not a secret: it is replaced at once
    users = sorted(
        {
            (c["name"], c.get("host", "localhost"))
            for c in lows["ns1"]
            if c.get("state") == "mysql_user" and c.get("fun") == "present"
        }
    )
    assert users, "no mysql_user.present state on ns1"
    _mysql(
        lab,
        "ns1",
        "; ".join(f"ALTER USER '{u}'@'{h}' IDENTIFIED BY '{throwaway}'" for u, h in users),
    )
    _mysql(
        lab,
        "ns1",
        "DELETE FROM postfixadmin.domain_admins WHERE username LIKE 'admin@%';"
        " DELETE FROM postfixadmin.admin WHERE username LIKE 'admin@%'",
    )
    _mysql(lab, "ns2", "STOP SLAVE; CHANGE MASTER TO MASTER_USER='mc-scan'; START SLAVE")
    return len(users)


def _plant(lab, canary):
    """The canary, in each source the scan reads: it must be found in every one."""
    for node in NODES:
        # a command line for a few samples (the value on stdin: not on the host's own ps)
        res = lab.lab.run(node, ["sh", "-s"], capture=True, input=f"sh -c 'sleep 1.5' {canary} &\n")
        assert res.returncode == 0, res.stderr
        lab.run(node, "logger", "-t", "mc-secret-scan", f"planted {canary}")
        lab.run(node, "sh", "-c", f"echo 'mc-secret-scan planted {canary}' >> /var/log/salt/minion")
    res = lab.salt("*", "test.echo", canary, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def _apply(lab, *extra):
    """jid, printed text and {minion: return} of a state.apply on all nodes."""
    res = lab.salt("*", "state.apply", *extra, "--out=json", "--show-jid", timeout=1800)
    match = re.search(r"^jid: (\d+)$", res.stdout, re.M)
    assert match, f"no jid in the apply's output (rc {res.returncode}): {res.stderr[-1000:]}"
    ret, body, pos = {}, res.stdout[match.end() :], 0
    decoder = json.JSONDecoder()
    while body[pos:].strip():  # one JSON object per minion
        pos += len(body[pos:]) - len(body[pos:].lstrip())
        doc, pos = decoder.raw_decode(body, pos)
        ret.update(doc)
    return match.group(1), res.stdout + res.stderr, ret


def _failed_ids(ret):
    bad = []
    for node, states in ret.items():
        if not isinstance(states, dict):
            bad.append(f"{node}: no state return")
            continue
        bad += [f"{node}: {k.split('_|-')[1]}" for k, v in states.items() if v["result"] is False]
    return bad


def _changed(ret, node, state_id):
    for key, val in (ret.get(node) or {}).items():
        if key.split("_|-")[1] == state_id:
            return bool(val.get("changes"))
    return None


@pytest.mark.lab
def test_no_secret_in_outputs_jobs_ps_or_logs(lab):
    needles, skipped = _pillar_secrets(lab)
    assert needles, "pillar mailcluster:secrets holds no secret"
    lows = _lowstates(lab)
    files = _secret_files(lab, lows, needles)
    n_files = sum(len(v) for v in files.values())
    assert n_files, "no managed file holds a secret: nothing would show a diff"

    canary = "mc-canary-" + pysecrets.token_hex(8)
    since = time.time() - 1
    before = _parallel(lambda n: _probe(lab, n, "offsets"), NODES)
    for node in NODES:
        lab.run(node, "rm", "-f", SAMPLES, STOP)
        _probe(lab, node, "sample", SAMPLES, STOP, "0.1", "3600")
    try:
        for node, paths in files.items():
            if paths:
                done = _probe(lab, node, "scramble", MARK, *paths, stdin=json.dumps(list(needles)))
                assert done == paths, (node, paths, done)
        n_users = _perturb_db(lab, lows)
        _plant(lab, canary)
        jid_test, out_test, _ = _apply(lab, "test=True")
        jid, out, ret = _apply(lab)
    finally:
        for node in NODES:
            lab.run(node, "touch", STOP)
    time.sleep(0.5)
    lookups = {j: lab.salt_run("jobs.lookup_jid", j, "--out=json") for j in (jid_test, jid)}
    got = _parallel(
        lambda n: _probe(lab, n, "collect", str(since), SAMPLES, stdin=json.dumps(before[n])),
        NODES,
    )

    assert not _failed_ids(ret), f"the apply failed: {_failed_ids(ret)}"
    # what the apply had to redo, so that diffs, passwords and command lines were produced
    redo = [
        ("ns1", "web-config-postfixadmin-admin-cmd-run"),
        ("ns2", "db-replica-replication-mailcluster-replica-running"),
    ]
    assert all(_changed(ret, n, s) for n, s in redo), [(n, s, _changed(ret, n, s)) for n, s in redo]
    pw_changed = [k for k, v in ret["ns1"].items() if "mysql_user" in k and v.get("changes")]
    assert len(pw_changed) == n_users, (len(pw_changed), n_users)
    rewritten = {
        (node, v["name"])
        for node in NODES
        for k, v in ret[node].items()
        if k.startswith("file_|-") and v.get("changes")
    }
    missing = [(n, p) for n, ps in files.items() for p in ps if (n, p) not in rewritten]
    assert not missing, f"files holding secrets the apply did not rewrite: {missing}"

    sources = {
        "state.apply test=True output": out_test.encode(),
        "state.apply output": out.encode(),
    }
    for j, res in lookups.items():
        sources[f"jobs.lookup_jid {j}"] = (res.stdout + res.stderr).encode()
    for node, data in got.items():
        sources[f"{node}: process list"] = base64.b64decode(data["ps"])
        sources[f"{node}: journal"] = base64.b64decode(data["journal"])
        for path, b64 in data["logs"].items():
            sources[f"{node}: {path}"] = base64.b64decode(b64)
        for path, b64 in data["jobs"].items():
            sources[f"{node}: job cache {path}"] = base64.b64decode(b64)

    planted = {s.split(" in ", 1)[1] for s in scan({canary: "canary"}, sources)}
    for node in NODES:
        for where in ("process list", "journal", "/var/log/salt/minion"):
            assert f"{node}: {where}" in planted, (
                f"the scan did not see the canary in {node}: {where}"
            )
    assert any("job cache" in p for p in planted), (
        "the scan did not see the canary in the job cache"
    )

    hits = scan(needles, sources)
    n_jobs = sum(len(d["jobs"]) for d in got.values())
    n_logs = sum(len(d["logs"]) for d in got.values())
    print(
        f"secret scan: {len(needles)} needles from pillar ({len(set(needles.values()))} keys;"
        f" left out {skipped}), {n_files} files rewritten, {n_users} SQL users reset;"
        f" {len(sources)} sources: 2 apply outputs, {len(lookups)} lookup_jid,"
        f" {n_jobs} job cache files, {n_logs} log files, {len(NODES)} journals and process"
        f" lists; canary found in {len(planted)}"
    )
    assert not hits, f"secrets visible: {hits}"
