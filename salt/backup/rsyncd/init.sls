{%- from "backup/map.jinja" import backup with context %}
# The rsync daemon of a store node or the target (modules in files/rsyncd.conf.jinja), on the
# node's cluster address only.

include:
  - backup.config

backup-rsyncd-secrets-file-managed:
  file.managed:
    - name: {{ backup.rsyncd_secrets }}
    - mode: "0600"
    - show_changes: false
    - contents: {{ (backup.rsync.user ~ ":" ~ backup.cluster.rsync_secret) | json }}
    - require:
      - sls: backup.config

backup-rsyncd-conf-file-managed:
  file.managed:
    - name: {{ backup.rsyncd_conf }}
    - source: salt://backup/files/rsyncd.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ backup | json }}
    - require:
      - sls: backup.config

backup-rsyncd-service-running:
  service.running:
    - name: {{ backup.rsync_service }}
    - enable: true
    - require:
      - file: backup-rsyncd-secrets-file-managed
    - watch:
      - file: backup-rsyncd-conf-file-managed
