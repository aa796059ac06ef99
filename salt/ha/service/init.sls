{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.config

ha-service-heartbeat-service-running:
  service.running:
    - name: {{ ha.service }}
    - enable: true
    - reload: true
    - watch:
      - sls: ha.config
