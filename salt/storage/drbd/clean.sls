{#- Take the DRBD resource down and remove its file and its fence-peer handler. Metadata and
    data stay on the disk. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
include:
  - storage.o2cb.clean

storage-drbd-clean-resource-cmd-run:
  cmd.run:
    - name: drbdadm down {{ storage.drbd.resource }}
    - onlyif: drbdadm role {{ storage.drbd.resource }}
    - require:
      - sls: storage.o2cb.clean

storage-drbd-clean-resource-file-absent:
  file.absent:
    - name: {{ storage.drbd.config_dir }}/{{ storage.drbd.resource }}.res
    - require:
      - cmd: storage-drbd-clean-resource-cmd-run

# the fence-peer handler and its config (storage:drbd:arbiter), named only by the file above
storage-drbd-clean-arbiter-file-absent:
  file.absent:
    - names:
      - {{ storage.drbd.arbiter.handler }}
      - {{ storage.drbd.arbiter.config }}
    - require:
      - file: storage-drbd-clean-resource-file-absent
