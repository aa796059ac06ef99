{%- from "fail2ban/map.jinja" import fail2ban with context %}
# stopping fail2ban runs each jail's actionstop: its rules, sets and table inet f2b-table go

fail2ban-service-clean-service-dead:
  service.dead:
    - name: {{ fail2ban.service }}
    - enable: false
