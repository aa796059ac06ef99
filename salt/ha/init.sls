# ha: heartbeat on the mail pair. Heartbeat owns the service IPs (IPaddr2 resources):
# highstate configures it and runs the daemon, never the IPs themselves.
include:
  - ha.package
  - ha.config
  - ha.service
