# Suite graphs: one node, mailgraph over the mail role's log, with what mail needs
# (the DB, the DNS primary, the shared_path store).
mailcluster:
  cluster:
    name: kitchen
    domain: cluster.test
    network: 10.87.0.0/24
    interface: eth0
  nodes:
    kitchen:
      ip: 10.87.0.10
      service_ip: 10.87.0.110
      roles: [common, db_primary, dns_primary, storage, mail, graphs]
