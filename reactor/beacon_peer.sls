# yamllint disable rule:braces
# A mail node's heartbeat beacon reported its peer (or a DRBD connection) changing state.
# The event only names the node to look at: the runner verifies from the master with two
# witnesses and acts, or fires mailcluster/failover/<node>/refused (docs/selfheal.md).
mailcluster-selfheal-beacon-peer-runner:
  runner.mailcluster_failover.handle:
    - args:
        - tag: {{ tag | json }}
        - data: {{ data | json }}
