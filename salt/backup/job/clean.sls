{%- from "backup/map.jinja" import backup with context %}
# the sets themselves are kept (remove target:directory by hand)

backup-job-clean-timer-service-dead:
  service.dead:
    - name: {{ backup.unit }}.timer
    - enable: false

backup-job-clean-units-file-absent:
  file.absent:
    - names:
      - /etc/systemd/system/{{ backup.unit }}.timer
      - /etc/systemd/system/{{ backup.unit }}.service
    - require:
      - service: backup-job-clean-timer-service-dead

backup-job-clean-systemd-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: backup-job-clean-units-file-absent
