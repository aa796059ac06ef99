# yamllint disable rule:braces
# A node's fail2ban banned (or let go) an address. Any accepted minion can fire any event:
# the runner checks the sender (a node with a fail2ban role), the jail and the address (never
# a cluster address) before it bans it on the other nodes (docs/fail2ban.md).
mailcluster-fail2ban-peer-runner:
  runner.mailcluster_peerban.handle:
    - args:
        - tag: {{ tag | json }}
        - data: {{ data | json }}
