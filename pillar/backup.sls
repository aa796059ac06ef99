# Backups of the lab cluster (the backup role, salt/backup; keys in pillar.example and
# salt/backup/parameters/schema.yaml). The master's node keeps the sets: it is the one node
# that holds no mail or DB data of its own. Its secrets are in secrets.sls
# (mailcluster:secrets:backup).
backup:
  target:
    node: salt
    directory: /var/backups/mailcluster
  schedule: '*-*-* 02:30:00'
  randomized_delay: 600
  retention: 3
