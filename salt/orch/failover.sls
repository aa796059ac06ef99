# orch.failover: fail one mail node over by hand, through the same runner as the reactor
# (both witnesses, lock, hold-down, audit events). Safe to run twice: the runner reads the
# DNS and the node first and does nothing when the node is failed over already.
#   salt-run state.orchestrate orch.failover pillar='{"node": "mx1"}'
{%- set node = salt["pillar.get"]("node") %}

selfheal-orch-failover-runner-salt-runner:
  salt.runner:
    - name: mailcluster_failover.failover
    - node: {{ node | json }}
