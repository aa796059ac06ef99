{%- from "common/map.jinja" import mapdata as db with context %}
{%- set repl = db.cluster.replication %}
# db.replica: read-only copy of the primary through GTID replication. Users, schema and rows
# all arrive by replication: nothing is written locally.

include:
  - db

db-replica-replication-mailcluster-replica-running:
  mailcluster.replica_running:
    - name: {{ db.cluster.primary_ip }}
    - user: {{ repl.user }}
    - password: {{ repl.password | json }}
    - require:
      - sls: db.service
