{%- from "common/map.jinja" import mapdata as web with context %}
# Undo web: disable the HTTPS, proxy and Postfix Admin lighttpd config, remove the domains'
# MTA-STS and client set-up files; the apps' packages and databases are kept.

web-clean-lighttpd-tls-file-absent:
  file.absent:
    - name: /etc/lighttpd/conf-enabled/60-mailcluster.conf

web-clean-lighttpd-postfixadmin-file-absent:
  file.absent:
    - name: /etc/lighttpd/conf-enabled/90-postfixadmin.conf

web-clean-lighttpd-service-running:
  service.running:
    - name: lighttpd
    - watch:
      - file: web-clean-lighttpd-tls-file-absent
      - file: web-clean-lighttpd-postfixadmin-file-absent

web-clean-clients-file-absent:
  file.absent:
    - name: {{ web.clients.root }}
