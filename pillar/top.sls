# Pillar top: every node sees the cluster topology (roles come from it, see salt/top.sls),
# the domains and the secrets. `node` gives each minion its own entry as `mailcluster:node`
# (targeting: salt -I 'mailcluster:node:roles:mail' ...). `local` is an optional extra file
# for site or test additions (tests/lab writes one to add a domain).
base:
  '*':
    - topology
    - domains
    - secrets
    - storage
    - node
    - local
    - ignore_missing: true
