# Suite dns-primary: one node that is the cluster's DNS primary (BIND, every domain's zone).
mailcluster:
  cluster:
    name: kitchen
    domain: cluster.test
    network: 10.87.0.0/24
    interface: eth0
  nodes:
    kitchen:
      ip: 10.87.0.10
      roles: [common, dns_primary]
