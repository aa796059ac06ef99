# dns: pick dns.primary or dns.secondary (pillar roles dns_primary / dns_secondary).
include:
  - dns.package
  - dns.config
  - dns.service
