{%- from "backup/map.jinja" import backup with context %}

backup-config-clean-tool-file-absent:
  file.absent:
    - name: {{ backup.tool }}

backup-config-clean-dir-file-absent:
  file.absent:
    - name: {{ backup.config_dir }}
