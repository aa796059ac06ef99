{%- from "common/map.jinja" import mapdata as ha with context %}
# Undo ha: stop heartbeat (its service IP then leaves this node) and remove its config; the
# keepalived layer too (ha.keepalived.clean).

include:
  - ha.keepalived.clean

ha-clean-heartbeat-service-dead:
  service.dead:
    - name: {{ ha.service }}
    - enable: false
{%- for file in ["ha.cf", "haresources", "authkeys"] %}

ha-clean-{{ file | replace(".", "-") }}-file-absent:
  file.absent:
    - name: /etc/ha.d/{{ file }}
    - require:
      - service: ha-clean-heartbeat-service-dead
{%- endfor %}

ha-clean-heartbeat-restart-file-absent:
  file.absent:
    - name: /etc/systemd/system/{{ ha.service }}.service.d/mailcluster-restart.conf
    - require:
      - service: ha-clean-heartbeat-service-dead
