# common: base packages, /etc/hosts and resolv.conf for the cluster, cluster TLS.
include:
  - common.package
  - common.config
  - common.tls
