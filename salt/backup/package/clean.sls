{%- from "backup/map.jinja" import backup with context %}
# the packages stay: rsync and the MariaDB client are common tools other things may use
include:
  - backup.config.clean
