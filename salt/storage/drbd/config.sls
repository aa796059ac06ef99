{#- The DRBD resource file, first written WITHOUT allow-two-primaries (replace: False: only
    when the file does not exist yet). drbd/service.sls writes the final file, with
    allow-two-primaries, once the initial sync is done. Both are checked by drbdadm first. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.package

{%- set a = storage.drbd.arbiter %}
{%- if a.enabled %}
{%- set masters = salt["mailcluster.nodes_with"]("master") %}
{%- set host = a.host or (salt["pillar.get"]("mailcluster:nodes:" ~ masters[0] ~ ":ip") if masters else "") %}

# DRBD's fence-peer handler: asks the master's arbiter who keeps writing (docs/storage.md,
# "Partition"); one file, also the wire format the master's arbiter engine loads
storage-drbd-config-arbiter-handler-file-managed:
  file.managed:
    - name: {{ a.handler }}
    - source: salt://storage/files/fence_peer.py
    - mode: '0755'
    - require:
      - sls: storage.package

# holds the DRBD shared secret (it signs the verdicts): root only, no diff in the output
storage-drbd-config-arbiter-config-file-serialize:
  file.serialize:
    - name: {{ a.config }}
    - serializer: json
    - mode: '0600'
    - makedirs: true
    - show_changes: false
    - dataset:
        host: {{ host | json }}
        port: {{ a.port }}
        timeout: {{ a.timeout }}
        node: {{ storage.node | json }}
        resource: {{ storage.drbd.resource | json }}
        secret: {{ storage.drbd.shared_secret | json }}
        reboot_on_deny: {{ a.reboot_on_deny | json }}
{%- endif %}

# may hold the DRBD shared-secret (storage:drbd:shared_secret): no diff in the state's output
storage-drbd-config-resource-initial-file-managed:
  file.managed:
    - name: {{ storage.drbd.config_dir }}/{{ storage.drbd.resource }}.res
    - source: salt://storage/files/drbd-resource.res.jinja
    - template: jinja
    - replace: false
    - mode: '0600'
    - show_changes: false
    - check_cmd: drbdadm dump all -c
    - context:
        storage: {{ storage | json }}
        two_primaries: false
    - require:
      - sls: storage.package
{%- if a.enabled %}
      - file: storage-drbd-config-arbiter-handler-file-managed
      - file: storage-drbd-config-arbiter-config-file-serialize
{%- endif %}
