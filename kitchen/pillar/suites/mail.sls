# Suite mail: one node, postfix + dovecot + rspamd on the shared_path store, with what
# they need on the same node: the DB their maps read, the DNS primary (zones, DKIM records).
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
      roles: [common, db_primary, dns_primary, storage, mail]
