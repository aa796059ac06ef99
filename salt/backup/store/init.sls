# backup.store (a store node): the rsync daemon serves the shared store read-only to the job.
include:
  - storage
  - backup.rsyncd
