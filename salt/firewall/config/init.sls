{%- from "common/map.jinja" import mapdata as firewall with context %}
{%- set ruleset = salt["mailcluster_firewall.ruleset"](firewall) %}

include:
  - firewall.package

firewall-config-dropin-dir-file-directory:
  file.directory:
    - name: {{ firewall.dropin_dir }}
    - mode: "0755"
    - require:
      - sls: firewall.package

# the ruleset is checked by nft (parsed and tried against the kernel, nothing committed)
# before it replaces the old file
firewall-config-ruleset-file-managed:
  file.managed:
    - name: {{ firewall.dropin }}
    - source: salt://firewall/files/mailcluster.nft.jinja
    - template: jinja
    - mode: "0644"
    - check_cmd: nft -c -f
    - context:
        mapdata: {{ firewall | json }}
        ruleset: {{ ruleset | json }}
    - require:
      - file: firewall-config-dropin-dir-file-directory

firewall-config-nftables-conf-file-managed:
  file.managed:
    - name: {{ firewall.config }}
    - source: salt://firewall/files/nftables.conf.jinja
    - template: jinja
    - mode: "0755"
    - check_cmd: nft -c -f
    - context:
        mapdata: {{ firewall | json }}
    - require:
      - file: firewall-config-ruleset-file-managed
