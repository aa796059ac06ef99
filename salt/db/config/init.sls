{%- from "common/map.jinja" import mapdata as db with context %}

include:
  - db.package

db-config-server-cnf-file-managed:
  file.managed:
    - name: {{ db.config_file }}
    - source: salt://db/files/mailcluster.cnf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ db | json }}
    - require:
      - sls: db.package
