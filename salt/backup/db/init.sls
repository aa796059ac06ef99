{%- from "backup/map.jinja" import backup with context %}
{%- set c = backup.cluster %}
# backup.db (the DB primary): the backup SQL user, from the target's address only, with what a
# consistent dump needs and no more. Replicas get it by replication, like every SQL user.

include:
  - db.service

backup-db-user-mysql-user-present:
  mysql_user.present:
    - name: {{ backup.db.user }}
    - host: {{ c.target.ip | json }}
    # MariaDB's hash, not the password: the statement goes into the binary logs (docs/secrets.md)
    - password_hash: {{ salt["mailcluster_db.native_password_hash"](c.db_password) | json }}
    - connection_unix_socket: /run/mysqld/mysqld.sock
    - connection_user: root
    - require:
      - sls: db.service
{%- for database in backup.include.databases %}

backup-db-{{ database }}-mysql-grants-present:
  mysql_grants.present:
    - grant: select,show view,trigger,lock tables
    - database: {{ database }}.*
    - user: {{ backup.db.user }}
    - host: {{ c.target.ip | json }}
    - connection_unix_socket: /run/mysqld/mysqld.sock
    - connection_user: root
    - require:
      - mysql_user: backup-db-user-mysql-user-present
{%- endfor %}
