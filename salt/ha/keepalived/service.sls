{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.keepalived.config

{%- if grains.get("mailcluster_ha_standby") %}

# standing by after a partition of the pair (docs/selfheal.md): the peer serves both IPs
ha-keepalived-service-keepalived-service-dead:
  service.dead:
    - name: {{ ha.keepalived.service }}
    - require:
      - sls: ha.keepalived.config
{%- else %}

# a reload re-reads the config keeping the instances' states (no address leaves meanwhile)
ha-keepalived-service-keepalived-service-running:
  service.running:
    - name: {{ ha.keepalived.service }}
    - enable: true
    - reload: true
    - watch:
      - sls: ha.keepalived.config
{%- endif %}
