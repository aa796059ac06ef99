{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.drbd.clean

storage-package-clean-pkgs-pkg-removed:
  pkg.removed:
    - pkgs: {{ storage.packages[storage.backend] | json }}
    - require:
      - sls: storage.drbd.clean
