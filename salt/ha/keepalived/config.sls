{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.keepalived.package

# writes each VRRP instance's state where _modules/keepalived.py reads it (the witnesses)
ha-keepalived-config-notify-file-managed:
  file.managed:
    - name: /usr/local/lib/mailcluster/keepalived-notify
    - source: salt://ha/files/keepalived-notify
    - makedirs: true
    - mode: "0755"
    - require:
      - sls: ha.keepalived.package

ha-keepalived-config-keepalived-conf-file-managed:
  file.managed:
    - name: /etc/keepalived/keepalived.conf
    - source: salt://ha/files/keepalived.conf.jinja
    - template: jinja
    - mode: "0644"
    - makedirs: true
    - context:
        mapdata: {{ ha | json }}
        node: {{ grains["id"] | json }}
    - check_cmd: /usr/sbin/keepalived --config-test -f
    - require:
      - sls: ha.keepalived.package
      - file: ha-keepalived-config-notify-file-managed
