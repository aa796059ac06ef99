# ca: the cluster CA on the master's own minion (role master). Its key never leaves this
# node; the other nodes get their certificates signed here remotely (common.tls, signing
# policies in pillar/ca.sls, peer rule in reactor/master.d/x509.conf) and the CA certificate
# from the Salt mine (mine function mailcluster_ca).
include:
  - ca.authority
