{%- from "common/map.jinja" import mapdata as graphs with context %}

include:
  - graphs.service

graphs-web-lighttpd-pkg-installed:
  pkg.installed:
    - pkgs: {{ graphs.web_packages | json }}

graphs-web-lighttpd-conf-file-managed:
  file.managed:
    - name: /etc/lighttpd/conf-available/60-mailgraph.conf
    - source: salt://graphs/files/lighttpd-mailgraph.conf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ graphs | json }}
    - require:
      - pkg: graphs-web-lighttpd-pkg-installed

graphs-web-lighttpd-conf-file-symlink:
  file.symlink:
    - name: /etc/lighttpd/conf-enabled/60-mailgraph.conf
    - target: ../conf-available/60-mailgraph.conf
    - require:
      - file: graphs-web-lighttpd-conf-file-managed

graphs-web-lighttpd-check-cmd-run:
  cmd.run:
    - name: lighttpd -tt -f /etc/lighttpd/lighttpd.conf
    - onchanges:
      - file: graphs-web-lighttpd-conf-file-managed
      - file: graphs-web-lighttpd-conf-file-symlink

graphs-web-lighttpd-service-running:
  service.running:
    - name: lighttpd
    - enable: true
    - require:
      - cmd: graphs-web-lighttpd-check-cmd-run
    - watch:
      - file: graphs-web-lighttpd-conf-file-managed
      - file: graphs-web-lighttpd-conf-file-symlink
