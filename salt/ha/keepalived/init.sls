# The keepalived layer of the ha role (ha:mover: keepalived): package, config, service
include:
  - ha.keepalived.package
  - ha.keepalived.config
  - ha.keepalived.service
