{%- from "backup/map.jinja" import backup with context %}

backup-rsyncd-clean-service-dead:
  service.dead:
    - name: {{ backup.rsync_service }}
    - enable: false

backup-rsyncd-clean-files-file-absent:
  file.absent:
    - names:
      - {{ backup.rsyncd_conf }}
      - {{ backup.rsyncd_secrets }}
    - require:
      - service: backup-rsyncd-clean-service-dead
