{%- from "common/map.jinja" import mapdata as ha with context %}

include:
  - ha.package

ha-config-ha-cf-file-managed:
  file.managed:
    - name: /etc/ha.d/ha.cf
    - source: salt://ha/files/ha.cf.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ ha | json }}
    - require:
      - sls: ha.package

ha-config-haresources-file-managed:
  file.managed:
    - name: /etc/ha.d/haresources
    - source: salt://ha/files/haresources.jinja
    - template: jinja
    - mode: "0644"
    - context:
        mapdata: {{ ha | json }}
    - require:
      - sls: ha.package

# holds heartbeat's authkey: no diff in the state's output (nor in the job cache)
ha-config-authkeys-file-managed:
  file.managed:
    - name: /etc/ha.d/authkeys
    - contents: |
        auth 1
        1 sha1 {{ ha.cluster.authkey }}
    - mode: "0600"
    - show_changes: false
    - require:
      - sls: ha.package
