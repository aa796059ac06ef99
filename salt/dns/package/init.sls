{%- from "common/map.jinja" import mapdata as dns with context %}

dns-package-bind-pkg-installed:
  pkg.installed:
    - pkgs: {{ dns.packages | json }}
