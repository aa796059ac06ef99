# Suite db-primary: one node, the cluster's MariaDB primary (Postfix Admin's schema,
# every domain's rows).
mailcluster:
  cluster:
    name: kitchen
    domain: cluster.test
    network: 10.87.0.0/24
    interface: eth0
  nodes:
    kitchen:
      ip: 10.87.0.10
      roles: [common, db_primary]
