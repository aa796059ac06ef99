{%- from "common/map.jinja" import mapdata as storage with context %}
storage-mount-clean-volume-mount-unmounted:
  mount.unmounted:
    - name: {{ storage.mount_point }}
    - device: {{ storage.drbd.device }}
