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

# Heartbeat merges a healed partition of the pair by re-executing itself on both nodes.
# - In the lab the new instance sometimes shut down at once (exit 0, no stop job) and stayed
#   down, leaving its node's service IP on the peer for good: Restart= starts it again. A
#   stop by systemctl (the master's arbitration, the store guard, a highstate) is not undone.
# - A stop during that re-exec left the new instance running outside the stopped unit
#   (Debian's KillMode=process), and the next start made a second one: two heartbeats on one
#   node, and the peer dropping the node's messages as replays. control-group ends every
#   process of the unit at a stop (the resources are addresses only, no daemons).
ha-config-heartbeat-restart-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ ha.service }}.service.d/mailcluster-restart.conf
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (ha role): start heartbeat again when it exits by itself.
        [Service]
        Restart=always
        RestartSec=2
        KillMode=control-group

# systemd reads drop-ins on daemon-reload only
ha-config-heartbeat-restart-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: ha-config-heartbeat-restart-file-managed
