{%- from "common/map.jinja" import mapdata as db with context %}
{%- set repl = db.cluster.replication %}
# SQL users, least privilege: repl may only replicate, postfix/dovecot only read their tables
# from the mail nodes' addresses. Made on the primary; replicas get them by replication.
# Given as MariaDB's hash: CREATE/ALTER USER with a plaintext password would be written to the
# binary log (and the replicas' relay logs) as it stands.

include:
  - db.schema
{%- for host in repl.hosts %}

db-users-repl-{{ host }}-mysql-user-present:
  mysql_user.present:
    - name: {{ repl.user }}
    - host: {{ host | json }}
    - password_hash: {{ salt["mailcluster_db.native_password_hash"](repl.password) | json }}
    - connection_unix_socket: {{ db.socket }}
    - connection_user: root
    - require:
      - sls: db.schema

db-users-repl-{{ host }}-mysql-grants-present:
  mysql_grants.present:
    - grant: replication slave
    - database: '*.*'
    - user: {{ repl.user }}
    - host: {{ host | json }}
    - connection_unix_socket: {{ db.socket }}
    - connection_user: root
    - require:
      - mysql_user: db-users-repl-{{ host }}-mysql-user-present
{%- endfor %}
{%- for user in db.cluster.readers %}

db-users-{{ user.name }}-{{ user.host }}-mysql-user-present:
  mysql_user.present:
    - name: {{ user.name }}
    - host: {{ user.host | json }}
    - password_hash: {{ salt["mailcluster_db.native_password_hash"](user.password) | json }}
    - connection_unix_socket: {{ db.socket }}
    - connection_user: root
    - require:
      - sls: db.schema
{%- for table in user.tables %}

db-users-{{ user.name }}-{{ user.host }}-{{ table }}-mysql-grants-present:
  mysql_grants.present:
    - grant: select
    - database: {{ db.database }}.{{ table }}
    - user: {{ user.name }}
    - host: {{ user.host | json }}
    - connection_unix_socket: {{ db.socket }}
    - connection_user: root
    - require:
      - mysql_user: db-users-{{ user.name }}-{{ user.host }}-mysql-user-present
{%- endfor %}
{%- endfor %}
