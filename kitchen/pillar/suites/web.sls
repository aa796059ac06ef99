# Suite web: one node, Roundcube and Postfix Admin (lighttpd + php-fpm), with the DB
# they need on the same node.
mailcluster:
  cluster:
    name: kitchen
    domain: cluster.test
    network: 10.87.0.0/24
    interface: eth0
  nodes:
    kitchen:
      ip: 10.87.0.10
      roles: [common, db_primary, web]
