# Pillar top: every node sees the cluster topology (roles come from it, see salt/top.sls),
# the domains and the secrets. `node` gives each minion its own entry as `mailcluster:node`
# (targeting: salt -I 'mailcluster:node:roles:mail' ...). `ca` gives the CA minion (role
# master) its signing policies and mine function. `local` is an optional extra file
# for site additions (not in git); `roles_test` is written and removed by
# tests/lab/test_roles_cluster.py and bench/converge_bench.py (extra domains) only;
# `scale_test` by tests/lab/_scale_pillar.py (many domains: issue 14's test and bench) only;
# `lab` by `lab/lab up --storage drbd` (lab/pillar-drbd.sls) only.
base:
  '*':
    - topology
    - domains
    - secrets
    - storage
    - node
    - ca
    - backup
    - rspamd
    - fail2ban
    - acme
    - local
    - lab
    - roles_test
    - scale_test
    - ignore_missing: true
