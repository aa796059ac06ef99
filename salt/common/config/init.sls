{%- from "common/map.jinja" import mapdata as common with context %}

include:
  - common.package

common-config-hosts-file-managed:
  file.managed:
    - name: /etc/hosts
    - source: salt://common/files/hosts.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ common | json }}
    - require:
      - sls: common.package

common-config-resolv-file-managed:
  file.managed:
    - name: /etc/resolv.conf
    - source: salt://common/files/resolv.conf.jinja
    - template: jinja
    - mode: "0644"
    - follow_symlinks: false
    - context:
        mapdata: {{ common | json }}
    - require:
      - sls: common.package
