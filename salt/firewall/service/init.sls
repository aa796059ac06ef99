{%- from "common/map.jinja" import mapdata as firewall with context %}

include:
  - firewall.config

# Debian's unit is a oneshot: start and reload both run `nft -f /etc/nftables.conf`, which
# replaces our table atomically (ExecStop flushes the whole ruleset: never stopped here)
firewall-service-nftables-service-running:
  service.running:
    - name: {{ firewall.service }}
    - enable: true
    - reload: true
    - watch:
      - sls: firewall.config

# the files alone do not prove the table is loaded (`nft flush ruleset`, a stopped unit):
# load it again when it is missing
firewall-service-table-cmd-run:
  cmd.run:
    - name: nft -f {{ firewall.dropin }}
    - unless: nft list table inet {{ firewall.table }}
    - require:
      - service: firewall-service-nftables-service-running
