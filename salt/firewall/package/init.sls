{%- from "common/map.jinja" import mapdata as firewall with context %}

firewall-package-nftables-pkg-installed:
  pkg.installed:
    - pkgs: {{ firewall.packages | json }}
