{%- from "common/map.jinja" import mapdata as mail with context %}
# Undo mail: stop postfix and dovecot, remove the SQL maps and credentials. Maildirs are kept.

mail-clean-postfix-service-dead:
  service.dead:
    - name: {{ mail.postfix.service }}
    - enable: false

mail-clean-dovecot-service-dead:
  service.dead:
    - name: {{ mail.dovecot.service }}
    - enable: false

mail-clean-postfix-sql-file-absent:
  file.absent:
    - name: {{ mail.postfix.sql_dir }}
    - require:
      - service: mail-clean-postfix-service-dead

mail-clean-dovecot-sql-file-absent:
  file.absent:
    - name: /etc/dovecot/dovecot-sql.conf.ext
    - require:
      - service: mail-clean-dovecot-service-dead

mail-clean-quota-warning-file-absent:
  file.absent:
    - name: {{ mail.quota.warning_script }}
    - require:
      - service: mail-clean-dovecot-service-dead

{%- set dedup = mail.dovecot.dedup.script %}

mail-clean-dedup-script-file-absent:
  file.absent:
    - names:
      - {{ dedup }}
      - {{ dedup[:-6] ~ ".svbin" }}
    - require:
      - service: mail-clean-dovecot-service-dead

{%- for unit in mail.vmail.guarded_units %}

mail-clean-guard-{{ unit }}-file-absent:
  file.absent:
    - name: /etc/systemd/system/{{ unit }}.d/mailcluster-store.conf
{%- endfor %}
