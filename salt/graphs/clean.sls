{%- from "common/map.jinja" import mapdata as graphs with context %}
# Undo graphs: stop mailgraph and its CGI listener. RRD files are kept.

graphs-clean-mailgraph-service-dead:
  service.dead:
    - name: {{ graphs.service }}
    - enable: false

graphs-clean-lighttpd-conf-file-absent:
  file.absent:
    - name: /etc/lighttpd/conf-enabled/60-mailgraph.conf

graphs-clean-lighttpd-service-dead:
  service.dead:
    - name: lighttpd
    - enable: false
    - require:
      - file: graphs-clean-lighttpd-conf-file-absent
