{#- Undo init.sls for the configured backend (unmounts; never wipes DRBD metadata or data). #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.{{ storage.backend }}.clean
