# Roles come from pillar: pillar/node.sls copies this minion's entry of mailcluster:nodes to
# mailcluster:node, and each role below matches on it (never on host names). No custom
# module here: the top file renders before a fresh minion has synced _modules.
# common.pillar runs first everywhere and fails hard on invalid pillar (naming the key); the
# roles' map.jinja raises on it too, so nothing renders into a state that could change.
base:
  '*':
    - common.pillar
  # the cluster CA first: the other nodes' certificates wait for it (common.tls)
  'mailcluster:node:roles:master':
    - match: pillar
    - ca
  'mailcluster:node:roles:common':
    - match: pillar
    - common
    - selfheal.watchdog
    - firewall
  # THE LAB'S TEST ACME CA (pebble, salt/acme/pebble) on the master's node, only with pillar
  # acme:pebble:enabled
  'I@mailcluster:node:roles:master and I@acme:pebble:enabled:true':
    - match: compound
    - acme.pebble
  'mailcluster:node:roles:db_primary':
    - match: pillar
    - db.primary
  'mailcluster:node:roles:db_replica':
    - match: pillar
    - db.replica
  'mailcluster:node:roles:dns_primary':
    - match: pillar
    - dns.primary
  'mailcluster:node:roles:dns_secondary':
    - match: pillar
    - dns.secondary
  'mailcluster:node:roles:storage':
    - match: pillar
    - storage
  'mailcluster:node:roles:mail':
    - match: pillar
    - mail
  'mailcluster:node:roles:ha':
    - match: pillar
    - ha
    - selfheal
  'mailcluster:node:roles:graphs':
    - match: pillar
    - graphs
  'mailcluster:node:roles:web':
    - match: pillar
    - web
  # brute-force protection (salt/fail2ban) on the nodes users log in to, after the roles whose
  # logs its jails read
  'I@mailcluster:node:roles:mail or I@mailcluster:node:roles:web':
    - match: compound
    - fail2ban
  # certificates from an ACME CA (salt/acme) on the nodes that serve TLS to users, only with
  # pillar acme:server; after the mail and web roles, whose configs name them (acme.seed)
  '( I@mailcluster:node:roles:mail or I@mailcluster:node:roles:web ) and I@acme:server:https://*':
    - match: compound
    - acme
  'mailcluster:node:roles:backup':
    - match: pillar
    - backup
