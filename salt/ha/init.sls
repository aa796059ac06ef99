{%- from "common/map.jinja" import mapdata as ha with context %}
# ha: the mover of the mail pair's service IPs, heartbeat (default) or keepalived (pillar
# ha:mover, docs/keepalived.md). The mover owns the service IPs: highstate configures it and
# runs the daemon, never the IPs themselves. Heartbeat stays installed and configured with
# either mover, so that switching back installs nothing.
include:
  - ha.package
  - ha.config
{%- if ha.mover == "keepalived" %}
  - ha.keepalived
{%- endif %}
  - ha.service
