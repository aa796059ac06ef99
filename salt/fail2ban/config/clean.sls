{%- from "fail2ban/map.jinja" import fail2ban with context %}
include:
  - fail2ban.service.clean

fail2ban-config-clean-files-file-absent:
  file.absent:
    - names:
      - {{ fail2ban.jail_file }}
      - {{ fail2ban.action_dir }}/{{ fail2ban.peer_ban.action }}.conf
      - {{ fail2ban.filter_dir }}/mailcluster-postfixadmin.conf
    - require:
      - sls: fail2ban.service.clean
