{#- OCFS2 on the DRBD device: formatted once, by the initial primary only (the formatted
    state never formats over an existing filesystem); the other node waits for the
    signature. Then mounted on both at mount_point. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- set o = storage.ocfs2 %}
include:
  - storage.drbd
  - storage.o2cb

{%- if storage.node == storage.drbd.initial_primary %}

storage-mount-volume-o2cb-formatted:
  o2cb.formatted:
    - name: {{ storage.drbd.device }}
    - cluster: {{ o.cluster }}
    - label: {{ o.label }}
    - slots: {{ o.slots }}
    - block_size: {{ o.block_size }}
    - cluster_size: {{ o.cluster_size }}
    - journal_size: {{ o.journal_size }}
    - require:
      - sls: storage.drbd.service
      - sls: storage.o2cb.service
    - require_in:
      - mount: storage-mount-volume-mount-mounted
{%- else %}

storage-mount-volume-loop-until_no_eval:
  loop.until_no_eval:
    - name: o2cb.fs_info
    - args:
      - {{ storage.drbd.device }}
    - expected: null
    - compare_operator: ne
    - period: 3
    - timeout: {{ o.format_wait }}
    - unless:
      - fun: o2cb.fs_info
        device: {{ storage.drbd.device }}
    - require:
      - sls: storage.drbd.service
      - sls: storage.o2cb.service
    - require_in:
      - mount: storage-mount-volume-mount-mounted
{%- endif %}

storage-mount-point-file-directory:
  file.directory:
    - name: {{ storage.mount_point }}
    - makedirs: true

storage-mount-volume-mount-mounted:
  mount.mounted:
    - name: {{ storage.mount_point }}
    - device: {{ storage.drbd.device }}
    - fstype: ocfs2
    - opts: {{ o.mount_options | json }}
    - persist: false
    - require:
      - file: storage-mount-point-file-directory
