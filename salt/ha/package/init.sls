{%- from "common/map.jinja" import mapdata as ha with context %}

ha-package-heartbeat-pkg-installed:
  pkg.installed:
    - pkgs: {{ ha.packages | json }}
