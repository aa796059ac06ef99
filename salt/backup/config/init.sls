{%- from "backup/map.jinja" import backup with context %}
{%- set c = backup.cluster %}
# The tool and what it reads: config.json (no secret), my.cnf and rsync.secret (mode 0600,
# never shown in a diff: the tool passes them to mariadb and rsync by file, not as arguments).

include:
  - backup.package

backup-config-dir-file-directory:
  file.directory:
    - name: {{ backup.config_dir }}
    - makedirs: true
    - mode: "0700"

backup-config-tool-file-managed:
  file.managed:
    - name: {{ backup.tool }}
    - source: salt://backup/files/mailcluster-backup.py
    - mode: "0755"
    - require:
      - sls: backup.package

backup-config-settings-file-managed:
  file.managed:
    - name: {{ backup.config_dir }}/config.json
    - mode: "0644"
    - contents: {{ salt["mailcluster_backup.tool_config"](backup) | json }}
    - require:
      - file: backup-config-dir-file-directory

backup-config-my-cnf-file-managed:
  file.managed:
    - name: {{ backup.config_dir }}/my.cnf
    - mode: "0600"
    - show_changes: false
    - contents: |
        # Managed by salt (backup role): the backup SQL user, read by mariadb-dump/mariadb
        [client]
        user = {{ backup.db.user }}
        password = "{{ c.db_password }}"
    - require:
      - file: backup-config-dir-file-directory

backup-config-rsync-secret-file-managed:
  file.managed:
    - name: {{ backup.config_dir }}/rsync.secret
    - mode: "0600"
    - show_changes: false
    - contents: {{ c.rsync_secret | json }}
    - require:
      - file: backup-config-dir-file-directory
