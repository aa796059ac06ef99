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
# the role's rsync daemons (store nodes: the store for the job; the target: the sets for the
# restores), in the firewall's role -> ports table; rsyncd's `hosts allow` narrows it further
firewall:
  lookup:
    roles:
      backup:
        - {service: rsync-backup, port: 873, pillar_key: backup:rsync:port, from: backup}
