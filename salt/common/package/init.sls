{%- from "common/map.jinja" import mapdata as common with context %}

common-package-base-pkg-installed:
  pkg.installed:
    - pkgs: {{ common.packages | json }}
