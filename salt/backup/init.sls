{%- from "backup/map.jinja" import backup with context %}
# backup: the cluster's backup sets (docs/backup.md). Every node with role backup gets the
# tool and its settings; then by what else the node is (backup facts, `cluster.parts`):
# job (the target: the sets, the timer, the rsync daemon serving the sets to restores),
# store (a store node: its rsync daemon serves the shared store to the job, read-only),
# db (the DB primary: the backup SQL user; replicas get it by replication).
include:
  - backup.package
  - backup.config
{%- for part in backup.cluster.parts %}
  - backup.{{ part }}
{%- endfor %}
