{%- from "common/map.jinja" import mapdata as dns with context %}

include:
  - dns.config

dns-service-named-service-running:
  service.running:
    - name: {{ dns.service }}
    - enable: true
    - reload: true
    - watch:
      - sls: dns.config
