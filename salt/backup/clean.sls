# backup.clean: undo the backup role in reverse (job, rsync daemon, SQL user on the DB
# primary, tool and settings). The backup sets on the target are kept.
{%- from "backup/map.jinja" import backup with context %}
include:
{%- if "job" in backup.cluster.parts %}
  - backup.job.clean
{%- endif %}
  - backup.rsyncd.clean
{%- if "db" in backup.cluster.parts %}
  - backup.db.clean
{%- endif %}
  - backup.package.clean
