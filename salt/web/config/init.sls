{%- from "common/map.jinja" import mapdata as web with context %}

include:
  - web.package
  - common.tls

web-config-roundcube-file-managed:
  file.managed:
    - name: /etc/roundcube/config.inc.php
    - source: salt://web/files/roundcube.config.inc.php.jinja
    - template: jinja
    - user: root
    - group: www-data
    - mode: "0640"
    - check_cmd: php -l
    - context:
        mapdata: {{ web | json }}
    - require:
      - sls: web.package

web-config-postfixadmin-file-managed:
  file.managed:
    - name: /etc/postfixadmin/config.local.php
    - source: salt://web/files/postfixadmin.config.local.php.jinja
    - template: jinja
    - user: root
    - group: www-data
    - mode: "0640"
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

web-config-postfixadmin-admin-cmd-run:
  cmd.run:
    - name: >-
        postfixadmin-cli admin add {{ web.cluster.admin }}
        --password '{{ web.cluster.admin_password }}' --password2 '{{ web.cluster.admin_password }}'
        --superadmin 1 --active 1
    - unless: >-
        mysql -N -e "SELECT 1 FROM {{ web.postfixadmin.database }}.admin
        WHERE username='{{ web.cluster.admin }}'" | grep -qx 1
    - require:
      - file: web-config-postfixadmin-file-managed
