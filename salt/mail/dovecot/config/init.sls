{%- from "common/map.jinja" import mapdata as mail with context %}

include:
  - mail.dovecot.package
  - mail.vmail
  - common.tls
{%- if mail.acme is defined %}
  - acme.seed
{%- endif %}

mail-dovecot-config-dovecot-conf-file-managed:
  file.managed:
    - name: /etc/dovecot/dovecot.conf
    - source: salt://mail/files/dovecot.conf.jinja
    - template: jinja
    - mode: "0644"
    - check_cmd: doveconf -n -c
    - context:
        mapdata: {{ mail | json }}
    - require:
      - sls: common.tls
{%- if mail.acme is defined %}
      - file: acme-seed-cert-file-copy
{%- endif %}
      - sls: mail.dovecot.package
      - file: mail-dovecot-config-quota-warning-file-managed
{%- if mail.dovecot.dedup.enabled %}
      - file: mail-dovecot-config-dedup-binary-file-managed
{%- endif %}

# what dovecot's quota-warning service runs when a delivery crosses a warning level
mail-dovecot-config-quota-warning-file-managed:
  file.managed:
    - name: {{ mail.quota.warning_script }}
    - source: salt://mail/files/quota-warning.sh.jinja
    - template: jinja
    - mode: "0755"
    - context:
        mapdata: {{ mail | json }}

{%- if mail.dovecot.dedup.enabled %}
{%- set script = mail.dovecot.dedup.script %}
{%- set binary = script[:-6] ~ ".svbin" %}

# the global script against duplicate deliveries (mail:dovecot:dedup), compiled here: LMTP
# runs as vmail and cannot write a compiled copy beside a root-owned script
mail-dovecot-config-dedup-script-file-managed:
  file.managed:
    - name: {{ script }}
    - source: salt://mail/files/dedup.sieve
    - makedirs: true
    - mode: "0644"
    - require:
      - sls: mail.dovecot.package

mail-dovecot-config-dedup-script-cmd-run:
  cmd.run:
    - name: sievec {{ script }} {{ binary }}
    # compiled already, and after the script's last change
    - unless: test {{ binary }} -nt {{ script }}
    - require:
      - file: mail-dovecot-config-dedup-script-file-managed

# sievec writes its output for root alone; LMTP reads it as vmail
mail-dovecot-config-dedup-binary-file-managed:
  file.managed:
    - name: {{ binary }}
    - replace: false
    - create: false
    - mode: "0644"
    - require:
      - cmd: mail-dovecot-config-dedup-script-cmd-run
{%- endif %}

# holds dovecot's DB password: no diff in the state's output (nor in the job cache)
mail-dovecot-config-sql-file-managed:
  file.managed:
    - name: /etc/dovecot/dovecot-sql.conf.ext
    - source: salt://mail/files/dovecot-sql.conf.ext.jinja
    - template: jinja
    - user: root
    - group: dovecot
    - mode: "0640"
    - show_changes: false
    - context:
        mapdata: {{ mail | json }}
    - require:
      - sls: mail.dovecot.package

mail-dovecot-config-index-dir-file-directory:
  file.directory:
    - name: {{ mail.dovecot.index_dir }}
    - user: {{ mail.vmail.user }}
    - group: {{ mail.vmail.group }}
    - mode: "0750"
    - require:
      - sls: mail.vmail
