{%- from "backup/map.jinja" import backup with context %}

backup-package-pkgs-pkg-installed:
  pkg.installed:
    - pkgs: {{ backup.packages | json }}
