"""Bad pillar stops a highstate before any state runs, with a message naming the pillar key.

Two tiers:

- a broad table of bad values (types, ranges, enums, unknown keys, addresses used twice,
  timings that cannot work, malformed secrets and hashes, unknown roles and backends), each
  merged into the lab pillar and given to ``mailcluster.validate`` in one masterless minion:
  the error names the full key and says what is allowed; secret values never show;
- a few of them end to end: a ``local.sls`` in a copy of the lab pillar, then a highstate
  (test=True) and a single role's SLS: both stop with the key named, no state runs.

Good pillars pass: the lab's, pillar.example, the storage and selfheal examples, the VM pair's,
and every role's defaults.yaml against its own schema.
"""

import pathlib
import re

import pytest
import yaml
from test_roles_support import REPO, merged, pillar_copy, run_node

HERE = pathlib.Path(__file__).resolve().parent

# (pillar merged into the lab pillar (YAML), text the error must contain)
BAD = {
    # ---- role keys: types, ranges, enums, unknown keys
    "ha-deadtime-negative": (
        "ha: {deadtime: -1}",
        "ha:deadtime: must be a positive duration, seconds (2, 0.5) or with a unit",
    ),
    "ha-udpport-range": ("ha: {udpport: 70000}", "ha:udpport: must be <= 65535 (got 70000)"),
    "ha-auto-failback-bare-on": (
        "ha: {auto_failback: on}",
        "ha:auto_failback: must be 'on', 'off' or 'legacy' (quoted",
    ),
    "ha-typo": ("ha: {deadtme: 3}", "ha:deadtme: unknown key (allowed: lookup, packages"),
    "ha-lookup-type": ("ha: {lookup: {keepalive: fast}}", "ha:lookup:keepalive: must be"),
    "ha-not-a-mapping": ("ha: fast", "ha: must be object or null"),
    "dns-ttl-type": ("dns: {ttl: 5m}", 'dns:ttl: must be integer (got "5m")'),
    "dns-spf-enum": ("dns: {spf_policy: +all}", 'dns:spf_policy: must be one of "-all"'),
    "dns-update-type": ("dns: {update_types: [A, ANY]}", "dns:update_types:1: must be one of"),
    "db-binlog-range": ("db: {binlog_expire_days: 0}", "db:binlog_expire_days: must be >= 1"),
    "mail-size-type": (
        "mail: {postfix: {message_size_limit: 50M}}",
        "mail:postfix:message_size_limit: must be integer",
    ),
    "mail-pass-scheme": (
        "mail: {dovecot: {pass_scheme: PLAIN}}",
        "mail:dovecot:pass_scheme: must be one of",
    ),
    "mail-typo": ("mail: {postfix: {mian: {}}}", "mail:postfix:mian: unknown key"),
    "mail-timeout-range": (
        "mail: {db_client: {connect_timeout: 0}}",
        "mail:db_client:connect_timeout: must be >= 1",
    ),
    "web-imap-port": ("web: {roundcube: {imap_port: 993}}", "web:roundcube:imap_port: must be 143"),
    "common-keysize": ("common: {tls: {keysize: 1024}}", "common:tls:keysize: must be one of 2048"),
    "graphs-port": ("graphs: {port: 0}", "graphs:port: must be >= 1"),
    "storage-backend": ("storage: {backend: nfs}", 'storage:backend: must be one of "shared_path"'),
    "storage-mode-int": (
        "storage: {mount_mode: 755}",
        "storage:mount_mode: must be an octal mode as a quoted string",
    ),
    "storage-method": ("storage: {shared_path: {method: copy}}", "storage:shared_path:method"),
    "selfheal-typo": (
        "mailcluster: {selfheal: {witnes_wait: 5}}",
        "mailcluster:selfheal:witnes_wait: unknown key",
    ),
    "selfheal-type": (
        "mailcluster: {selfheal: {enabled: 'yes'}}",
        'mailcluster:selfheal:enabled: must be boolean (got "yes")',
    ),
    "selfheal-range": (
        "mailcluster: {selfheal: {verify_timeout: 0}}",
        "mailcluster:selfheal:verify_timeout: must be > 0",
    ),
    "selfheal-reconcile-interval": (
        "mailcluster: {selfheal: {reconcile_interval: 0.5}}",
        "mailcluster:selfheal:reconcile_interval: must be >= 1",
    ),
    "selfheal-reconcile-interval-text": (
        "mailcluster: {selfheal: {reconcile_interval: 1m}}",
        "mailcluster:selfheal:reconcile_interval: must be number or null",
    ),
    # ---- the mailcluster key: types, unknown keys, unknown roles, references
    "mailcluster-typo": ("mailcluster: {clustr: {}}", "mailcluster:clustr: unknown key"),
    "node-typo": (
        "mailcluster: {nodes: {mx1: {service-ip: 10.88.0.113}}}",
        "mailcluster:nodes:mx1:service-ip: unknown key (allowed: ip, network, service_ip",
    ),
    "node-ip-malformed": (
        "mailcluster: {nodes: {mx1: {ip: 10.88.0.300}}}",
        "mailcluster:nodes:mx1:ip: must be an IPv4 or IPv6 address",
    ),
    "roles-not-a-list": (
        "mailcluster: {nodes: {ns2: {roles: common}}}",
        "mailcluster:nodes:ns2:roles: must be array",
    ),
    "unknown-role": (
        "mailcluster: {nodes: {ns2: {roles: [common, db_replica, webmail]}}}",
        "mailcluster:nodes:ns2:roles: unknown role 'webmail'",
    ),
    "exclusive-roles": (
        "mailcluster: {nodes: {ns2: {roles: [common, dns_primary, dns_secondary]}}}",
        "mailcluster:nodes:ns2:roles: roles dns_primary and dns_secondary exclude each other",
    ),
    "ha-three-nodes": (
        "mailcluster: {nodes: {ns2: {service_ip: 10.88.0.122, roles: [common, ha]}}}",
        "mailcluster:nodes: role ha needs exactly two nodes",
    ),
    "mail-without-service-ip": (
        "mailcluster: {nodes: {ns2: {roles: [common, db_replica, storage, mail]}}}",
        "mailcluster:nodes:ns2:service_ip: missing (required by role mail)",
    ),
    "unknown-dc": (
        "mailcluster: {nodes: {ns2: {dc: dc9}}}",
        "mailcluster:nodes:ns2:dc: unknown data centre 'dc9' (known: dc1, dc2)",
    ),
    "db-not-a-db-node": (
        "mailcluster: {nodes: {mx1: {db: mx2}}}",
        "mailcluster:nodes:mx1:db: 'mx2' is not a DB node",
    ),
    "db-server-id-twice": (
        "mailcluster: {nodes: {ns1: {db_server_id: 7}, ns2: {db_server_id: 7}}}",
        "mailcluster:nodes:ns2:db_server_id: 7 is already used by ns1",
    ),
    "bad-network": (
        "mailcluster: {cluster: {network: 10.88.0.0/33}}",
        "mailcluster:cluster:network: not a network",
    ),
    "bad-interface": (
        "mailcluster: {cluster: {interface: eth 0}}",
        "mailcluster:cluster:interface: must be a network interface name",
    ),
    "bad-domain": (
        "mailcluster: {domains: {bad..test: {mailboxes: []}}}",
        "mailcluster:domains:bad..test: not a valid domain name",
    ),
    "quota-negative": (
        "mailcluster: {domains: {example.test: {mailboxes: [{name: alice, quota_mb: -1}]}}}",
        "mailcluster:domains:example.test:mailboxes:0:quota_mb: must be >= 0",
    ),
    "alias-not-an-address": (
        "mailcluster: {domains: {example.test: {aliases: {info: [alice]}}}}",
        "mailcluster:domains:example.test:aliases:info: must be a list of addresses",
    ),
    "dns-withdrawn-not-mail": ("dns: {withdrawn: [ns1]}", "dns:withdrawn: 'ns1' is not a node"),
    # ---- addresses used twice, or not usable
    "service-ip-is-ns1": (
        "mailcluster: {nodes: {mx1: {service_ip: 10.88.0.21}}}",
        "mailcluster:nodes:mx1:service_ip: 10.88.0.21 is already used by mailcluster:nodes:ns1:ip",
    ),
    "service-ip-twice": (
        "mailcluster: {nodes: {mx2: {service_ip: 10.88.0.111}}}",
        "mailcluster:nodes:mx2:service_ip: 10.88.0.111 is already used by "
        "mailcluster:nodes:mx1:service_ip",
    ),
    "node-ip-twice": (
        "mailcluster: {nodes: {ns2: {ip: 10.88.0.21}}}",
        "mailcluster:nodes:ns2:ip: 10.88.0.21 is already used by mailcluster:nodes:ns1:ip",
    ),
    "service-ip-broadcast": (
        "mailcluster: {nodes: {mx1: {service_ip: 10.88.0.255}}}",
        "mailcluster:nodes:mx1:service_ip: 10.88.0.255 is the network or broadcast address",
    ),
    "service-ip-network": (
        "mailcluster: {nodes: {mx2: {service_ip: 10.88.0.0}}}",
        "mailcluster:nodes:mx2:service_ip: 10.88.0.0 is the network or broadcast address",
    ),
    "ip-outside-network": (
        "mailcluster: {nodes: {mx1: {service_ip: 192.168.7.1}}}",
        "mailcluster:nodes:mx1:service_ip: 192.168.7.1 is outside the node's network",
    ),
    # ---- timings that cannot work
    # a bad type in one key does not hide the relations of the others
    "two-faults": (
        "ha: {deadtime: -1}\nmailcluster: {nodes: {mx1: {service_ip: 10.88.0.21}}}",
        (
            "ha:deadtime: must be a positive duration",
            "mailcluster:nodes:mx1:service_ip: 10.88.0.21 is already used by",
        ),
    ),
    "warntime-not-below-deadtime": (
        "ha: {warntime: 2, deadtime: 2}",
        "ha:warntime: must be below deadtime (2 s >= 2 s)",
    ),
    "keepalive-not-below-warntime": (
        "ha: {keepalive: 1500ms}",
        "ha:keepalive: must be below warntime (1.5 s >= 1 s)",
    ),
    "warntime-from-lookup": (
        "ha: {lookup: {warntime: 5}}",
        "ha:lookup:warntime: must be below deadtime (5 s >= 2 s)",
    ),
    "initdead-short": ("ha: {initdead: 3}", "ha:initdead: must be at least twice deadtime"),
    "witness-wait-vs-deadtime": (
        "mailcluster: {selfheal: {witness_wait: 2}}",
        "mailcluster:selfheal:witness_wait: must be above ha:deadtime (2 s <= 2 s",
    ),
    "witness-wait-vs-raised-deadtime": (
        "ha: {deadtime: 5, initdead: 10}",
        "mailcluster:selfheal:witness_wait: must be above ha:deadtime (4 s <= 5 s",
    ),
    "partition-keeper-not-ha": (
        "mailcluster: {selfheal: {partition_keeper: ns1}}",
        "mailcluster:selfheal:partition_keeper: 'ns1' is not a node with role ha",
    ),
    "watchdog-deaf-after": (
        "mailcluster: {selfheal: {watchdog: {deaf_after: 8}}}",
        "mailcluster:selfheal:watchdog:deaf_after: must be above touch_interval",
    ),
    "store-mount-vs-mount-point": (
        "storage: {mount_point: /srv/vmail}",
        "mail:vmail:store_mount: must be storage:mount_point (/srv/vmail) or ''",
    ),
    "maildirs-outside-store": (
        "mail: {vmail: {maildirs: /var/mail/boxes}}",
        "mail:vmail:maildirs: must lie below mail:vmail:store_mount (/var/vmail)",
    ),
    "pass-scheme-vs-postfixadmin": (
        "mail: {dovecot: {pass_scheme: BLF-CRYPT}}",
        "mail:dovecot:pass_scheme: must be SHA512-CRYPT to read the hashes web:postfixadmin",
    ),
    "mail-domain-is-cluster-domain": (
        "mailcluster: {domains: {cluster.test: {mailboxes: []}}}",
        "mailcluster:domains:cluster.test: is mailcluster:cluster:domain",
    ),
    "dns-retry-vs-refresh": ("dns: {retry: 600}", "dns:retry: must be below dns:refresh"),
    "tls-renew-every-run": (
        "common: {tls: {days_remaining: 900}}",
        "common:tls:days_remaining: must be below days_valid (900 >= 825",
    ),
    "o2cb-keepalive-vs-idle": (
        "storage: {ocfs2: {timeouts: {keepalive_delay_ms: 30000}}}",
        "storage:ocfs2:timeouts:keepalive_delay_ms: must be below idle_timeout_ms",
    ),
    # ---- malformed secrets and hashes (values never repeated: see the test)
    "tsig-not-base64": (
        "mailcluster: {secrets: {tsig: {secret: not-base64-at-all!!}}}",
        "mailcluster:secrets:tsig:secret: must be base64",
    ),
    "tsig-algorithm": (
        "mailcluster: {secrets: {tsig: {algorithm: hmac-sha999}}}",
        'mailcluster:secrets:tsig:algorithm: must be one of "hmac-sha256"',
    ),
    "des-key-length": (
        "mailcluster: {secrets: {roundcube: {des_key: only-23-characters-long}}}",
        "mailcluster:secrets:roundcube:des_key: must be exactly 24 printable characters",
    ),
    "sql-password-blank": (
        "mailcluster: {secrets: {db: {postfix: 'has a blank'}}}",
        "mailcluster:secrets:db:postfix: must be at least 8 characters out of letters",
    ),
    "authkey-short": (
        "mailcluster: {secrets: {heartbeat: {authkey: abc}}}",
        "mailcluster:secrets:heartbeat:authkey: must be a string of at least 8 characters",
    ),
    "missing-secret": (
        "mailcluster: {secrets: {heartbeat: {authkey: ''}}}",
        "mailcluster:secrets:heartbeat:authkey: must be a string of at least 8 characters",
    ),
    "secret-group-typo": (
        "mailcluster: {secrets: {smtp: {x: y}}}",
        "mailcluster:secrets:smtp: unknown key (allowed: db, heartbeat",
    ),
    "password-hash-not-crypt": (
        "mailcluster: {domains: {new.test: {mailboxes: [{name: joe, password_hash: plain-pw1}]}}}",
        "mailcluster:domains:new.test:mailboxes:0:password_hash: must be a crypt(3) hash",
    ),
    "mailbox-secret-key": (
        "mailcluster: {secrets: {mailboxes: {alice: alice-lab-pw}}}",
        "mailcluster:secrets:mailboxes:alice: not a valid key here (must be an address",
    ),
    "ca-half": (
        "mailcluster: {secrets: {ca: {cert: '-----BEGIN CERTIFICATE-----'}}}",
        "mailcluster:secrets:ca: give cert and key together, or neither",
    ),
    "ca-not-pem": (
        "mailcluster: {secrets: {ca: {cert: MIIDXzCC, key: MIIEvQIB}}}",
        "mailcluster:secrets:ca:cert: must be a PEM certificate",
    ),
    "tls-unknown-node": (
        "mailcluster: {secrets: {tls: {mx9: {cert: '-----BEGIN CERTIFICATE-----', "
        "key: '-----BEGIN PRIVATE KEY-----'}}}}",
        "mailcluster:secrets:tls:mx9: not a node of mailcluster:nodes",
    ),
    "missing-mailbox-password": (
        "mailcluster: {domains: {new.test: {mailboxes: [{name: zed}]}}}",
        "mailcluster:secrets:mailboxes:zed@new.test: missing secret",
    ),
    "duplicate-mailbox": (
        "mailcluster: {domains: {dup.test: {mailboxes: [{name: joe}, {name: joe}]}}, "
        "secrets: {mailboxes: {joe@dup.test: pw}}}",
        "mailcluster:domains:dup.test:mailboxes:1:name: duplicate mailbox joe@dup.test",
    ),
}

# the drbd_ocfs2 backend on the lab pair (salt/storage/pillar.example's nodes)
DRBD = "storage: {backend: drbd_ocfs2, nodes: {mx1: {address: 10.99.0.11, number: 1}, mx2: {address: 10.99.0.12, number: 2}}, drbd: {shared_secret: functional-test-secret}}\n"  # noqa: E501
BAD_STORAGE = {
    "drbd-without-nodes": (
        "storage: {nodes: null}",
        "storage:nodes:mx1: missing (node mx1 has role storage",
    ),
    "drbd-ping-vs-dead-threshold": (
        "storage: {drbd: {ping_int: 10}, ocfs2: {timeouts: {dead_threshold: 11}}}",
        "storage:drbd:ping_int: DRBD notices a dead peer after ping_int + ping_timeout/10 = 10.5 s",
    ),
    "drbd-address-is-ns1": (
        "storage: {nodes: {mx2: {address: 10.88.0.21, number: 2}}}",
        "storage:nodes:mx2:address: 10.88.0.21 is already used by mailcluster:nodes:ns1:ip",
    ),
    "drbd-address-twice": (
        "storage: {nodes: {mx2: {address: 10.99.0.11, number: 2}}}",
        "storage:nodes:mx2:address: 10.99.0.11 is already used by storage:nodes:mx1:address",
    ),
    "drbd-number-twice": (
        "storage: {nodes: {mx2: {address: 10.99.0.12, number: 1}}}",
        "storage:nodes:mx2:number: 1 is already used by storage:nodes:mx1:number",
    ),
    "drbd-protocol": ("storage: {drbd: {protocol: A}}", "storage:drbd:protocol: must be C"),
    "drbd-victim": (
        "storage: {drbd: {split_brain_victim: ns1}}",
        "storage:drbd:split_brain_victim: 'ns1' is not one of storage:nodes (mx1, mx2)",
    ),
    "drbd-after-sb-2pri": (
        "storage: {drbd: {after_sb_2pri: discard-younger-primary}}",
        "storage:drbd:after_sb_2pri: must be disconnect",
    ),
    "drbd-node-not-storage": (
        "storage: {nodes: {ns1: {address: 10.99.0.21, number: 3}}}",
        "storage:nodes:ns1: not a node with role storage",
    ),
    "drbd-port-vs-o2cb": ("storage: {drbd: {port: 7777}}", "storage:drbd:port: must differ"),
    "drbd-number-missing": (
        "storage: {nodes: {mx2: {address: 10.99.0.12, number: null}}}",
        "storage:nodes:mx2:number: must be integer",
    ),
    "drbd-slots": ("storage: {ocfs2: {slots: 1}}", "storage:ocfs2:slots: must be at least"),
    "drbd-boot-wait-zero": (
        "storage: {drbd: {boot_peer_wait: 0}}",
        "storage:drbd:boot_peer_wait: must be >= 1",
    ),
    "drbd-boot-wait-text": (
        "storage: {drbd: {boot_peer_wait: 2min}}",
        "storage:drbd:boot_peer_wait: must be integer",
    ),
    "drbd-boot-wait-typo": ("storage: {drbd: {boot_wait: 60}}", "storage:drbd:boot_wait"),
    # the master as the pair's third party (storage:drbd:arbiter, docs/storage.md)
    "drbd-arbiter-no-secret": (
        "storage: {drbd: {shared_secret: ''}}",
        "storage:drbd:shared_secret: empty; storage:drbd:arbiter signs its verdicts with it",
    ),
    "drbd-arbiter-dont-care": (
        "storage: {drbd: {fencing: dont-care}}",
        "storage:drbd:fencing: 'dont-care' with storage:drbd:arbiter:enabled",
    ),
    "drbd-arbiter-own-handler": (
        "storage: {drbd: {handlers: {fence-peer: /usr/lib/drbd/crm-fence-peer.9.sh}}}",
        "storage:drbd:handlers:fence-peer: set while storage:drbd:arbiter:enabled",
    ),
    "drbd-fencing-without-handler": (
        "storage: {drbd: {arbiter: {enabled: false}}}",
        "storage:drbd:fencing: resource-and-stonith freezes I/O until a fence-peer handler",
    ),
    "drbd-arbiter-no-master": (
        "mailcluster: {nodes: {salt: {ip: 10.88.0.2, roles: [common, backup]}}}",
        "storage:drbd:arbiter:host: empty and no node has role master",
    ),
    "drbd-arbiter-port": (
        "storage: {drbd: {arbiter: {port: 70000}}}",
        "storage:drbd:arbiter:port",
    ),
    "drbd-arbiter-timeout-text": (
        "storage: {drbd: {arbiter: {timeout: 20s}}}",
        "storage:drbd:arbiter:timeout: must be integer",
    ),
}


def _secret_values(pillar):
    out = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, str) and len(value) >= 6:
            out.append(value)

    walk(pillar["mailcluster"].get("secrets") or {})
    return out


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory, lab_pillar_items):
    """Every bad case validated in one minion process (explicit pillar per call)."""
    cases = {name: merged(lab_pillar_items, text) for name, (text, _m) in BAD.items()}
    cases.update({name: merged(lab_pillar_items, DRBD, t) for name, (t, _m) in BAD_STORAGE.items()})
    names = sorted(cases)
    tmp = tmp_path_factory.mktemp("bad")
    results = run_node(tmp, "mx1", [["mailcluster.validate", cases[n]] for n in names])
    return {n: (cases[n], r) for n, r in zip(names, results, strict=True)}


@pytest.mark.parametrize("case", sorted({**BAD, **BAD_STORAGE}))
def test_bad_value_names_the_key(bad_results, case):
    messages = {**BAD, **BAD_STORAGE}[case][1]
    pillar, errors = bad_results[case]
    for message in [messages] if isinstance(messages, str) else messages:
        assert any(message in e for e in errors), errors
    # every message starts with a pillar key path
    assert all(re.match(r"^[a-z][a-z0-9_]*(:[^\s:]+)*: \S", e) for e in errors), errors
    # no secret value is ever repeated (the bad ones included)
    text = "\n".join(errors)
    leaked = [v for v in _secret_values(pillar) if v in text]
    assert leaked == [], errors


def _examples():
    storage = (REPO / "salt" / "storage" / "pillar.example").read_text()
    selfheal = (REPO / "salt" / "selfheal" / "pillar.example").read_text()
    vm = REPO / "tests" / "vm" / "pillar"
    return {
        "pillar.example": [(REPO / "pillar.example").read_text()],
        "lab+storage-example": ["LAB", storage],
        "lab+selfheal-example": ["LAB", selfheal],
        "lab+fast-heartbeat": ["LAB", "ha: {keepalive: 100ms, warntime: 300ms, deadtime: 500ms}"],
        "lab+drbd": ["LAB", DRBD],
        "vm-pair": [(vm / "topology.sls").read_text(), (vm / "storage.sls").read_text()],
        # tests/vm/test_10_storage.py: a storage-only pair with its store elsewhere
        "vm-pair-shared-path": [
            (vm / "topology.sls").read_text(),
            "storage: {backend: shared_path, mount_point: /var/vmail-shared}",
        ],
        # what the failover runner passes on its state.sls call of the dns role
        "lab+runner-serial-floor": ["LAB", "dns: {serial_floor: {example.test: 2026120101}}"],
    }


def test_good_pillars_pass(tmp_path, lab_pillar_items):
    examples = _examples()
    pillars = {}
    for name, parts in examples.items():
        base = lab_pillar_items if parts[0] == "LAB" else {}
        pillars[name] = merged(base, *[p for p in parts if p != "LAB"])
    pillars["lab"] = lab_pillar_items
    names = sorted(pillars)
    results = run_node(tmp_path, "mx1", [["mailcluster.validate", pillars[n]] for n in names])
    assert dict(zip(names, results, strict=True)) == {name: [] for name in names}


def test_every_role_default_passes_its_own_schema(tmp_path, lab_pillar_items):
    """A key added to a role's defaults.yaml must be declared in its schema too."""
    found = sorted(REPO.glob("salt/*/parameters/schema*.yaml"))
    assert len(found) >= 10
    calls, names = [], []
    for path in found:
        key = yaml.safe_load(path.read_text()).get("x-pillar-key") or path.parts[-3]
        defaults = path.parent / "defaults.yaml"
        if key == "mailcluster" or not defaults.exists():
            continue
        value = yaml.safe_load(defaults.read_text())
        nested = {key.split(":")[0]: {key.split(":")[1]: value}} if ":" in key else {key: value}
        names.append(key)
        calls.append(["mailcluster_schema.validate", merged(lab_pillar_items, yaml.dump(nested))])
    results = run_node(tmp_path, "mx1", [["mailcluster_schema.schemas"], *calls])
    assert "problems" not in results[0], results[0]
    assert {"mailcluster", "mailcluster:selfheal", "ha", "storage"} <= set(results[0])
    assert dict(zip(names, results[1:], strict=True)) == {name: [] for name in names}


# ------------------------------------------------------------------ end to end
E2E = {
    name: BAD[name]
    for name in ("ha-deadtime-negative", "service-ip-is-ns1", "unknown-role", "ha-typo")
}


@pytest.mark.parametrize("case", sorted(E2E))
def test_bad_pillar_stops_the_highstate(tmp_path, case):
    extra, message = E2E[case]
    errors, result, single = run_node(
        tmp_path,
        "mx1",
        [
            ["mailcluster.validate"],
            ["state.apply", [], {"test": True}],
            ["state.show_sls", "ha"],
        ],
        pillar_copy(tmp_path, yaml.dump(yaml.safe_load(extra))),
    )
    assert any(message in e for e in errors), errors
    # a highstate stops before running anything, with the key in its message
    if isinstance(result, dict):  # only the pillar check compiled: it fails hard
        assert [v["result"] for v in result.values()] == [False], result
        assert all(not v["changes"] for v in result.values())
        text = "\n".join(v["comment"] for v in result.values())
    else:  # role SLS files refused to render: no state ran
        text = "\n".join(result)
    assert message in text, text
    # and so does a single role through its map (its Jinja never sees the bad value)
    assert isinstance(single, list) and message in "\n".join(single), single


def test_added_domain_passes(tmp_path):
    extra = (
        "mailcluster:\n  domains:\n    added.test:\n      mailboxes:\n        - name: eve\n"
        "  secrets:\n    mailboxes:\n      eve@added.test: pw\n"
    )
    errors, zones = run_node(
        tmp_path,
        "ns1",
        [["mailcluster.validate"], ["mailcluster_dns.zones"]],
        pillar_copy(tmp_path, extra),
    )
    assert errors == []
    assert "added.test" in zones


def test_without_jsonschema_the_pillar_is_refused(tmp_path):
    """A minion without the jsonschema package says so, and how to install it."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    # a module named jsonschema that fails to import hides the real one in the worker
    (shadow / "jsonschema.py").write_text("raise ImportError('hidden by the test')\n")
    errors = run_node(tmp_path, "mx1", [["mailcluster.validate"]], env={"PYTHONPATH": str(shadow)})
    assert len(errors[0]) == 1
    assert "mailcluster: cannot check the pillar" in errors[0][0]
    assert "python3-jsonschema" in errors[0][0] and "salt-pip install jsonschema" in errors[0][0]
