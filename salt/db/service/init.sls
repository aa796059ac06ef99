{%- from "common/map.jinja" import mapdata as db with context %}

include:
  - db.config

# server_id, binlog and bind address only take effect on a restart
db-service-mariadb-service-running:
  service.running:
    - name: {{ db.service }}
    - enable: true
    - watch:
      - sls: db.config
