# Bring a bare cluster up in order: the cluster CA on the master (salt/ca), common everywhere
# (each node's certificate is signed by that CA), DB primary, DB replicas, DNS, storage, mail,
# HA, web, then a full highstate everywhere. Targets are the roles pillar gives each node
# (mailcluster:node:roles, see pillar/node.sls). Safe to run again: every step is a state.
#   salt-run state.orchestrate orch.cluster
{%- set steps = [
  ("db-primary", "db_primary", "db.primary"),
  ("db-replica", "db_replica", "db.replica"),
  ("dns-primary", "dns_primary", "dns.primary"),
  ("dns-secondary", "dns_secondary", "dns.secondary"),
  ("storage", "storage", "storage"),
  ("mail", "mail", "mail"),
  ("ha", "ha", "ha"),
  ("web", "web", "web"),
] %}

orch-cluster-pillar-salt-function:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: '*'

orch-cluster-sync-salt-function:
  salt.function:
    - name: saltutil.sync_all
    - tgt: '*'
    - require:
      - salt: orch-cluster-pillar-salt-function

orch-cluster-ca-salt-state:
  salt.state:
    - tgt: 'mailcluster:node:roles:master'
    - tgt_type: pillar
    - sls: ca
    - failhard: true
    - require:
      - salt: orch-cluster-sync-salt-function

orch-cluster-common-salt-state:
  salt.state:
    - tgt: 'mailcluster:node:roles:common'
    - tgt_type: pillar
    - sls: common
    - failhard: true
    - require:
      - salt: orch-cluster-ca-salt-state
{%- set ns = namespace(prev="orch-cluster-common-salt-state") %}
{%- for id, role, sls in steps %}

orch-cluster-{{ id }}-salt-state:
  salt.state:
    - tgt: 'mailcluster:node:roles:{{ role }}'
    - tgt_type: pillar
    - sls: {{ sls }}
    - failhard: true
    - require:
      - salt: {{ ns.prev }}
{%- set ns.prev = "orch-cluster-" ~ id ~ "-salt-state" %}
{%- endfor %}

orch-cluster-highstate-salt-state:
  salt.state:
    - tgt: '*'
    - highstate: true
    - require:
      - salt: {{ ns.prev }}
