include:
  - backup.rsyncd.clean
