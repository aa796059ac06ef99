# orch.failback: put a returned mail node back into DNS by hand (it must be healthy: minion
# answers, services active, heartbeat on the peer sees it active). Safe to run twice.
#   salt-run state.orchestrate orch.failback pillar='{"node": "mx1"}'
{%- set node = salt["pillar.get"]("node") %}

selfheal-orch-failback-runner-salt-runner:
  salt.runner:
    - name: mailcluster_failover.failback
    - node: {{ node | json }}
