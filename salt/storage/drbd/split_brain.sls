{#- Split brain: detected from DRBD (drbd.split_brain: StandAlone + "Split-Brain detected"),
    reported by an event and a failed state. Resolved only when pillar
    storage:drbd:split_brain_victim names a node: that node unmounts the volume, becomes
    Secondary and reconnects with --discard-my-data; the other one reconnects. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- set d = storage.drbd %}
{%- set detected = [{"fun": "drbd.split_brain", "name": d.resource, "get_return": "split_brain"}] %}
include:
  - storage.drbd.service

storage-drbd-split-brain-event-event-send:
  event.send:
    - name: mailcluster/storage/drbd/split-brain
    - data:
        node: {{ storage.node }}
        resource: {{ d.resource }}
        victim: {{ d.split_brain_victim | json }}
    - onlyif: {{ detected | json }}
    - require:
      - drbd: storage-drbd-service-resource-drbd-up

{%- if not d.split_brain_victim %}

storage-drbd-split-brain-detected-test-fail_without_changes:
  test.fail_without_changes:
    - name: drbd-split-brain-{{ d.resource }}
    - comment: >-
        DRBD resource {{ d.resource }} is in split brain on {{ storage.node }}: left
        StandAlone, no data discarded. Set pillar storage:drbd:split_brain_victim to the node
        whose changes must be discarded, or resolve it by hand.
    - onlyif: {{ detected | json }}
    - require:
      - event: storage-drbd-split-brain-event-event-send
{%- elif d.split_brain_victim == storage.node %}

storage-drbd-split-brain-victim-mount-unmounted:
  mount.unmounted:
    - name: {{ storage.mount_point }}
    - device: {{ d.device }}
    - onlyif: {{ detected | json }}
    - require:
      - drbd: storage-drbd-service-resource-drbd-up

storage-drbd-split-brain-victim-drbd-secondary:
  drbd.secondary:
    - name: {{ d.resource }}
    - onlyif: {{ detected | json }}
    - require:
      - mount: storage-drbd-split-brain-victim-mount-unmounted

storage-drbd-split-brain-victim-connect-cmd-run:
  cmd.run:
    - name: drbdadm connect --discard-my-data {{ d.resource }}
    - onlyif: {{ detected | json }}
    - require:
      - drbd: storage-drbd-split-brain-victim-drbd-secondary
{%- else %}

storage-drbd-split-brain-survivor-connect-cmd-run:
  cmd.run:
    - name: drbdadm connect {{ d.resource }}
    - onlyif: {{ detected | json }}
    - require:
      - drbd: storage-drbd-service-resource-drbd-up
{%- endif %}
