{%- from "fail2ban/map.jinja" import fail2ban with context %}
# fail2ban: brute-force protection on the nodes with role mail or web (docs/fail2ban.md). The
# jails of the node's roles ban through nftables (fail2ban's own table, beside the firewall
# role's); their action also tells the master, whose reactor bans the address on the other
# nodes. `fail2ban:enabled: false` removes the role.
include:
{%- if fail2ban.enabled %}
  - fail2ban.package
  - fail2ban.config
  - fail2ban.service
{%- else %}
  - fail2ban.clean
{%- endif %}
