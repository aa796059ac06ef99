{%- from "common/map.jinja" import mapdata as db with context %}
# Pillar's domains, mailboxes and aliases as rows in Postfix Admin's tables (one state for
# all domains: its cost does not grow with a state per row).

include:
  - db.schema

db-domains-rows-mailcluster-domains-synced:
  mailcluster.domains_synced:
    - name: {{ db.database }}
    - require:
      - sls: db.schema
