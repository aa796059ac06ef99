{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.config

{%- if grains.get("mailcluster_ha_standby") %}

# The master stopped heartbeat here to settle a partition of the pair (docs/selfheal.md): the
# peer serves both service IPs until the link is back, when the master clears the grain and
# starts heartbeat. A highstate meanwhile must not start it (each address would be twice).
ha-service-heartbeat-service-dead:
  service.dead:
    - name: {{ ha.service }}
    - require:
      - sls: ha.config
{%- else %}

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
{%- endif %}
