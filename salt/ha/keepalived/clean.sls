{%- from "common/map.jinja" import mapdata as ha with context %}
# Undo the keepalived layer: stop and disable it (its addresses leave this node), remove its
# config and notify script. The package stays (heartbeat's stays too: switching back and
# forth installs nothing).

ha-clean-keepalived-keepalived-service-dead:
  service.dead:
    - name: {{ ha.keepalived.service }}
    - enable: false

ha-clean-keepalived-keepalived-conf-file-absent:
  file.absent:
    - name: /etc/keepalived/keepalived.conf
    - require:
      - service: ha-clean-keepalived-keepalived-service-dead

ha-clean-keepalived-notify-file-absent:
  file.absent:
    - name: /usr/local/lib/mailcluster/keepalived-notify
    - require:
      - service: ha-clean-keepalived-keepalived-service-dead
