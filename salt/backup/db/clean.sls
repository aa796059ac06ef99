{%- from "backup/map.jinja" import backup with context %}

backup-db-clean-user-mysql-user-absent:
  mysql_user.absent:
    - name: {{ backup.db.user }}
    - host: {{ backup.cluster.target.ip | json }}
    - connection_unix_socket: /run/mysqld/mysqld.sock
    - connection_user: root
