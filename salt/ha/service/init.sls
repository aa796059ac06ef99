{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.config

# Debian's heartbeat unit has no reload: a changed ha.cf/haresources/authkeys restarts it
# (the peer holds this node's service IP meanwhile; auto_failback brings it back)
ha-service-heartbeat-service-running:
  service.running:
    - name: {{ ha.service }}
    - enable: true
    - watch:
      - sls: ha.config

# the daemon answers cl_status (issue 3's heartbeat state); the peer is not waited for, so
# highstate still works on the survivor while the other node is down
ha-service-heartbeat-heartbeat-running:
  heartbeat.running:
    - name: {{ ha.service }}
    - timeout: 30
    - require:
      - service: ha-service-heartbeat-service-running
