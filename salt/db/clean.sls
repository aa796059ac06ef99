{%- from "common/map.jinja" import mapdata as db with context %}
# Undo db: stop MariaDB and drop the replication settings. Data is kept.

db-clean-mariadb-service-dead:
  service.dead:
    - name: {{ db.service }}
    - enable: false

db-clean-server-cnf-file-absent:
  file.absent:
    - name: {{ db.config_file }}
    - require:
      - service: db-clean-mariadb-service-dead
