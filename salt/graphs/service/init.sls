{%- from "common/map.jinja" import mapdata as graphs with context %}

graphs-service-packages-pkg-installed:
  pkg.installed:
    - pkgs: {{ graphs.packages | json }}

# mailgraph exits when its log does not exist yet (rsyslog makes it on the first mail line)
graphs-service-mail-log-file-managed:
  file.managed:
    - name: {{ graphs.log }}
    - replace: false
    - user: root
    - group: adm
    - mode: "0640"
    - require:
      - pkg: graphs-service-packages-pkg-installed

graphs-service-mailgraph-service-running:
  service.running:
    - name: {{ graphs.service }}
    - enable: true
    - require:
      - file: graphs-service-mail-log-file-managed
