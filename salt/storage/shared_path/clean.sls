{#- Reverse of shared_path/init.sls: unmount (or unlink). The shared data stays. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- if storage.shared_path.method == "symlink" %}
storage-shared-path-clean-mount-point-file-absent:
  file.absent:
    - name: {{ storage.mount_point }}
    - onlyif: test -L {{ storage.mount_point }}
{%- else %}
storage-shared-path-clean-mount-point-mount-unmounted:
  mount.unmounted:
    - name: {{ storage.mount_point }}
    - persist: true
{%- endif %}
