{#- Tools of the configured backend (none for shared_path). #}
{%- from "common/map.jinja" import mapdata as storage with context %}
storage-package-pkgs-pkg-installed:
  pkg.installed:
    - pkgs: {{ storage.packages[storage.backend] | json }}
