{%- from "common/map.jinja" import mapdata as web with context %}

include:
  - web.package
  - common.tls
{%- if web.acme is defined %}
  - acme.seed
{%- endif %}

# holds Roundcube's des_key: no diff in the state's output (nor in the job cache)
web-config-roundcube-file-managed:
  file.managed:
    - name: /etc/roundcube/config.inc.php
    - source: salt://web/files/roundcube.config.inc.php.jinja
    - template: jinja
    - user: root
    - group: www-data
    - mode: "0640"
    - show_changes: false
    - check_cmd: php -l
    - context:
        mapdata: {{ web | json }}
    - require:
      - sls: web.package

# holds the hash of Postfix Admin's setup password (a crypt hash can be cracked offline):
# no diff in the state's output either
web-config-postfixadmin-file-managed:
  file.managed:
    - name: /etc/postfixadmin/config.local.php
    - source: salt://web/files/postfixadmin.config.local.php.jinja
    - template: jinja
    - user: root
    - group: www-data
    - mode: "0640"
    - show_changes: false
    - check_cmd: php -l
    - context:
        mapdata: {{ web | json }}
    - require:
      - sls: web.package

web-config-lighttpd-tls-file-managed:
  file.managed:
    - name: /etc/lighttpd/conf-available/60-mailcluster.conf
    - source: salt://web/files/lighttpd-mailcluster.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ web | json }}
    - require:
      - sls: web.package
      - sls: common.tls
{%- if web.acme is defined %}
      - file: acme-seed-cert-file-copy
{%- endif %}

web-config-lighttpd-tls-file-symlink:
  file.symlink:
    - name: /etc/lighttpd/conf-enabled/60-mailcluster.conf
    - target: ../conf-available/60-mailcluster.conf
    - require:
      - file: web-config-lighttpd-tls-file-managed

# Postfix Admin ships a lighttpd alias but does not enable it
web-config-lighttpd-postfixadmin-file-symlink:
  file.symlink:
    - name: /etc/lighttpd/conf-enabled/90-postfixadmin.conf
    - target: ../conf-available/90-postfixadmin.conf
    - require:
      - sls: web.package

web-config-lighttpd-check-cmd-run:
  cmd.run:
    - name: lighttpd -tt -f /etc/lighttpd/lighttpd.conf
    - onchanges:
      - file: web-config-lighttpd-tls-file-managed
      - file: web-config-lighttpd-tls-file-symlink
      - file: web-config-lighttpd-postfixadmin-file-symlink

# postfixadmin-cli takes the password only as an argument, which the process list, the
# minion's log ("Executing command ...") and the job cache would show. php runs the CLI from a
# script it reads on stdin instead, the password inside it (base64: no quoting to get wrong);
# no state output or log line carries a command's stdin.
{%- set admin_pw = "base64_decode('" ~ (web.cluster.admin_password | base64_encode) ~ "')" %}
web-config-postfixadmin-admin-cmd-run:
  cmd.run:
    - name: php -d display_errors=stderr
    - stdin: |
        <?php
        $pw = {{ admin_pw }};
        $argv = ['postfixadmin-cli.php', 'admin', 'add', '{{ web.cluster.admin }}',
                 '--password', $pw, '--password2', $pw, '--superadmin', '1', '--active', '1'];
        $argc = count($argv);
        require '/usr/share/postfixadmin/scripts/postfixadmin-cli.php';
    - unless: >-
        mysql -N -e "SELECT 1 FROM {{ web.postfixadmin.database }}.admin
        WHERE username='{{ web.cluster.admin }}'" | grep -qx 1
    - require:
      - file: web-config-postfixadmin-file-managed
