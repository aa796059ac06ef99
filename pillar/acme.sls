# Certificates from an ACME CA by DNS-01 (the acme role, salt/acme, docs/acme.md; keys in
# pillar.example and salt/acme/parameters/schema.yaml). The lab's CA is pebble, a test CA
# (acme.pebble) on the master's node: it serves its ACME API with that node's cluster
# certificate, which certbot on the nodes trusts through the cluster CA file (server_ca),
# and asks the DNS primary for the _acme-challenge TXT records at once (propagation 0).
# The TSIG key is in secrets.sls (mailcluster:secrets:acme).
acme:
  server: https://salt.cluster.test:14000/dir
  email: hostmaster@example.test
  server_ca: /etc/ssl/mailcluster/ca.crt
  propagation_seconds: 0
  pebble:
    enabled: true
