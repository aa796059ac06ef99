# The lab cluster: node addresses, roles and data centres. See pillar.example for every key.
mailcluster:
  cluster:
    name: lab
    domain: cluster.test
    network: 10.88.0.0/24
    interface: eth0
  datacentres:
    dc1:
      description: first site (mx1, ns1)
    dc2:
      description: second site (mx2, ns2)
  nodes:
    salt:
      ip: 10.88.0.2
      roles: [common, master, backup]
    mx1:
      ip: 10.88.0.11
      service_ip: 10.88.0.111
      dc: dc1
      roles: [common, storage, mail, ha, graphs, backup]
    mx2:
      ip: 10.88.0.12
      service_ip: 10.88.0.112
      dc: dc2
      roles: [common, storage, mail, ha, graphs, backup]
    ns1:
      ip: 10.88.0.21
      dc: dc1
      roles: [common, db_primary, dns_primary, web, backup]
    ns2:
      ip: 10.88.0.22
      dc: dc2
      roles: [common, db_replica, dns_secondary]
  # the lab's minion watchdog acts sooner than the defaults (2 min + 15 s checks), so that
  # tests/lab/test_selfheal_watchdog.py sees a deaf minion restarted in about a minute
  selfheal:
    watchdog:
      touch_interval: 10
      deaf_after: 40
      check_interval: 5
      backoff: 120

ha:
  keepalive: 200ms
  deadtime: 2
