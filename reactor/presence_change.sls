# yamllint disable rule:braces
# The master saw a minion connect or disconnect (tcp transport: ~25 ms after a process dies).
# Lost nodes are verified before anything moves; new ones are checked for failback.
mailcluster-selfheal-presence-change-runner:
  runner.mailcluster_failover.handle:
    - args:
        - tag: {{ tag | json }}
        - data: {{ data | json }}
