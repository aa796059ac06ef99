{%- from "common/map.jinja" import mapdata as web with context %}

include:
  - web.config

web-service-php-fpm-service-running:
  service.running:
    - name: {{ web.services.php_fpm }}
    - enable: true
    - reload: true
    - require:
      - sls: web.package

web-service-lighttpd-service-running:
  service.running:
    - name: {{ web.services.lighttpd }}
    - enable: true
    - require:
      - cmd: web-config-lighttpd-check-cmd-run
      - service: web-service-php-fpm-service-running
    - watch:
      - file: web-config-lighttpd-tls-file-managed
      - file: web-config-lighttpd-tls-file-symlink
      - file: web-config-lighttpd-postfixadmin-file-symlink
