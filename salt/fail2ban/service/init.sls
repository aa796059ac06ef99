{%- from "fail2ban/map.jinja" import fail2ban with context %}

include:
  - fail2ban.config

# a reload (fail2ban-client reload) keeps the bans; the nftables action only touches its own
# table inet f2b-table, so neither a reload nor a restart touches the firewall role's table
fail2ban-service-running-service-running:
  service.running:
    - name: {{ fail2ban.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: fail2ban-config-check-cmd-run
    - watch:
      - sls: fail2ban.config
