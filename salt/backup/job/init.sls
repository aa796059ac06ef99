{%- from "backup/map.jinja" import backup with context %}
# backup.job (the target): the sets' directory, the rsync daemon serving them to restores,
# and the timer that starts mailcluster-backup.service.

include:
  - backup.config
  - backup.rsyncd

backup-job-directory-file-directory:
  file.directory:
    - name: {{ backup.target.directory }}
    - makedirs: true
    - mode: "0700"
    - require_in:
      - service: backup-rsyncd-service-running
{%- for kind in ("service", "timer") %}

backup-job-{{ kind }}-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ backup.unit }}.{{ kind }}
    - source: salt://backup/files/backup.{{ kind }}.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ backup | json }}
    - require:
      - sls: backup.config
{%- endfor %}

# systemd reads unit files on daemon-reload only
backup-job-systemd-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: backup-job-service-file-managed
      - file: backup-job-timer-file-managed

backup-job-timer-service-running:
  service.running:
    - name: {{ backup.unit }}.timer
    - enable: true
    - require:
      - cmd: backup-job-systemd-cmd-run
      - file: backup-job-directory-file-directory
    - watch:
      - file: backup-job-timer-file-managed
