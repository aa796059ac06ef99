{%- from "common/map.jinja" import mapdata as mail with context %}
{%- from "rspamd/map.jinja" import rspamd with context %}
{%- set sql_maps = ["virtual_domains", "virtual_mailboxes", "virtual_aliases"] %}

include:
  - mail.postfix.package
  - common.tls
{%- if mail.acme is defined %}
  - acme.seed
{%- endif %}

mail-postfix-config-main-cf-file-managed:
  file.managed:
    - name: /etc/postfix/main.cf
    - source: salt://mail/files/main.cf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ mail | json }}
        rspamd: {{ {"enabled": rspamd.enabled, "milter": rspamd.milter} | json }}
    - require:
      - sls: common.tls
      - sls: mail.postfix.package
{%- if mail.acme is defined %}
    # postmap reads main.cf: on a bare node the SNI table is built after it (postmap failed
    # with "open /etc/postfix/main.cf" on a fresh lab), and checked with the rest below
    - require_in:
      - cmd: acme-seed-sni-map-cmd-run
{%- endif %}

mail-postfix-config-master-cf-file-managed:
  file.managed:
    - name: /etc/postfix/master.cf
    - source: salt://mail/files/master.cf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ mail | json }}
    - require:
      - sls: mail.postfix.package

# main.cf's alias_maps: local mail (root, postmaster of the node) is looked up there, and
# without the .db every such lookup logs "open database /etc/aliases.db" (seen from the
# submission service); the image installs postfix without running newaliases
mail-postfix-config-aliases-db-cmd-run:
  cmd.run:
    - name: newaliases
    - creates: /etc/aliases.db
    - require:
      - file: mail-postfix-config-main-cf-file-managed

mail-postfix-config-sql-dir-file-directory:
  file.directory:
    - name: {{ mail.postfix.sql_dir }}
    - user: root
    - group: postfix
    - mode: "0750"
    - require:
      - sls: mail.postfix.package

# Debian runs smtpd and postfix's other network daemons chrooted in /var/spool/postfix and
# copies /etc/resolv.conf in there only when the service starts: keep the copy in step with
# the common role's (a stale one sends each lookup first to a DNS server that may be gone:
# measured 2 s per SMTP connection with the node's first DNS server cut off)
mail-postfix-config-chroot-resolv-file-managed:
  file.managed:
    - name: /var/spool/postfix/etc/resolv.conf
    - source: /etc/resolv.conf
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - sls: mail.postfix.package

# MariaDB client options of the maps (connect timeout); read by proxymap, not chrooted
mail-postfix-config-sql-client-file-managed:
  file.managed:
    - name: {{ mail.postfix.sql_dir }}/client.cnf
    - source: salt://mail/files/postfix-sql-client.cnf.jinja
    - template: jinja
    - user: root
    - group: postfix
    - mode: "0640"
    - context:
        mapdata: {{ mail | json }}
    - require:
      - file: mail-postfix-config-sql-dir-file-directory
{%- for map in sql_maps %}

# holds postfix's DB password: no diff in the state's output (nor in the job cache)
mail-postfix-config-{{ map | replace("_", "-") }}-file-managed:
  file.managed:
    - name: {{ mail.postfix.sql_dir }}/{{ map }}.cf
    - source: salt://mail/files/postfix-sql.cf.jinja
    - template: jinja
    - user: root
    - group: postfix
    - mode: "0640"
    - show_changes: false
    - context:
        mapdata: {{ mail | json }}
        map: {{ map }}
    - require:
      - file: mail-postfix-config-sql-dir-file-directory
{%- endfor %}

# postfix check takes no single file: check the whole configuration after any change,
# before the service reloads (the service requires this state)
mail-postfix-config-check-cmd-run:
  cmd.run:
    - name: postfix check
    - onchanges:
      - file: mail-postfix-config-main-cf-file-managed
      - file: mail-postfix-config-sql-client-file-managed
      - file: mail-postfix-config-master-cf-file-managed
{%- for map in sql_maps %}
      - file: mail-postfix-config-{{ map | replace("_", "-") }}-file-managed
{%- endfor %}
{%- if mail.acme is defined %}
    - require:
      - cmd: acme-seed-sni-map-cmd-run
{%- endif %}
