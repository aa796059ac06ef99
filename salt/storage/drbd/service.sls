{#- DRBD resource lifecycle: metadata once, up, safe initial promotion on one node only, wait
    for the sync, then allow-two-primaries and dual primary. A split brain stops the run here
    (failed state + event) unless pillar names the node whose changes are discarded. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- set d = storage.drbd %}
include:
  - storage.drbd.config
  - storage.drbd.split_brain

storage-drbd-service-metadata-drbd-metadata_created:
  drbd.metadata_created:
    - name: {{ d.resource }}
    - require:
      - sls: storage.drbd.config

storage-drbd-service-resource-drbd-up:
  drbd.up:
    - name: {{ d.resource }}
    - require:
      - drbd: storage-drbd-service-metadata-drbd-metadata_created

{%- if storage.node == d.initial_primary %}

{#- Only for a brand new resource (local disk Inconsistent): wait for the peer, then the one
    forced promotion that starts the initial sync (drbd.primary refuses it unless both sides
    are connected and Inconsistent). #}
storage-drbd-service-peer-loop-until_no_eval:
  loop.until_no_eval:
    - name: drbd.cstate
    - args:
      - {{ d.resource }}
    - expected: Connected
    - period: 2
    - timeout: {{ d.connect_timeout }}
    - onlyif: drbdadm dstate {{ d.resource }} | grep -q '^Inconsistent/'
    - require:
      - drbd: storage-drbd-service-resource-drbd-up

storage-drbd-service-initial-drbd-primary:
  drbd.primary:
    - name: {{ d.resource }}
    - initial: true
    - onlyif: drbdadm dstate {{ d.resource }} | grep -qx 'Inconsistent/Inconsistent'
    - require:
      - loop: storage-drbd-service-peer-loop-until_no_eval
{%- endif %}

storage-drbd-service-resource-drbd-synced:
  drbd.synced:
    - name: {{ d.resource }}
    - timeout: {{ d.sync_timeout }}
    - require:
      - drbd: storage-drbd-service-resource-drbd-up
      - sls: storage.drbd.split_brain

# may hold the DRBD shared-secret (storage:drbd:shared_secret): no diff in the state's output
storage-drbd-service-resource-file-managed:
  file.managed:
    - name: {{ d.config_dir }}/{{ d.resource }}.res
    - source: salt://storage/files/drbd-resource.res.jinja
    - template: jinja
    - mode: '0600'
    - show_changes: false
    - check_cmd: drbdadm dump all -c
    - context:
        storage: {{ storage | json }}
        two_primaries: true
    - require:
      - drbd: storage-drbd-service-resource-drbd-synced

storage-drbd-service-adjust-cmd-run:
  cmd.run:
    - name: drbdadm adjust {{ d.resource }}
    - onchanges:
      - file: storage-drbd-service-resource-file-managed

storage-drbd-service-resource-drbd-dual_primary:
  drbd.dual_primary:
    - name: {{ d.resource }}
    - timeout: {{ d.sync_timeout }}
    - require:
      - file: storage-drbd-service-resource-file-managed
      - cmd: storage-drbd-service-adjust-cmd-run
