# Minimal topology for the guest pair: only the storage role (no secrets needed).
mailcluster:
  cluster:
    name: vm
    domain: vm.test
    network: 10.99.0.0/24
    interface: eth0
  nodes:
    mx1:
      ip: 10.99.0.11
      roles: [storage]
    mx2:
      ip: 10.99.0.12
      roles: [storage]
