# Pillar top of every kitchen suite (kitchen.yml copies this directory, some of the lab's
# pillar files and the suite's own directory to /srv/pillar). The suite's topology.sls makes
# the one node, `kitchen`, a cluster of the suite's roles; node.sls is the lab's own.
base:
  '*':
    - topology
    - domains
    - secrets
    - storage
    - node
    - rspamd
    - fail2ban
    - kitchen
