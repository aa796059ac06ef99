{%- from "common/map.jinja" import mapdata as db with context %}

db-package-mariadb-pkg-installed:
  pkg.installed:
    - pkgs: {{ db.packages | json }}
