{%- from "common/map.jinja" import mapdata as firewall with context %}
# Undo firewall: delete our table (other tables stay) and its drop-in. The nftables package,
# its unit and /etc/nftables.conf (which only includes the drop-ins) stay: other drop-ins may
# need them, and stopping the unit would flush every table.

firewall-clean-table-cmd-run:
  cmd.run:
    - name: nft delete table inet {{ firewall.table }}
    - onlyif: nft list table inet {{ firewall.table }}

firewall-clean-ruleset-file-absent:
  file.absent:
    - name: {{ firewall.dropin }}
    - require:
      - cmd: firewall-clean-table-cmd-run
