{%- from "common/map.jinja" import mapdata as firewall with context %}
# firewall: nftables on every node (role common). Each node opens to the world only the ports
# its pillar roles serve, cluster ports only to the cluster's addresses (the role -> ports
# table: parameters/defaults.yaml). `firewall:enabled: false` removes the role's table.
include:
{%- if firewall.enabled %}
  - firewall.package
  - firewall.config
  - firewall.service
{%- else %}
  - firewall.clean
{%- endif %}
