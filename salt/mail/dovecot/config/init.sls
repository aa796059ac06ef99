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

# what dovecot's quota-warning service runs when a delivery crosses a warning level
mail-dovecot-config-quota-warning-file-managed:
  file.managed:
    - name: {{ mail.quota.warning_script }}
    - source: salt://mail/files/quota-warning.sh.jinja
    - template: jinja
    - mode: "0755"
    - context:
        mapdata: {{ mail | json }}

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
