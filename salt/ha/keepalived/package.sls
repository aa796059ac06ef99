{%- from "common/map.jinja" import mapdata as ha with context %}
# keepalived, the pair's other mover (ha:mover: keepalived, docs/keepalived.md)

ha-keepalived-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ ha.keepalived.packages | json }}
