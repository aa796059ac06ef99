# Suite common: one node with the role every node has (base packages, /etc/hosts and
# resolv.conf for the cluster, its TLS files, the firewall).
mailcluster:
  cluster:
    name: kitchen
    domain: cluster.test
    network: 10.87.0.0/24
    interface: eth0
  nodes:
    kitchen:
      ip: 10.87.0.10
      roles: [common]
