{#- Backend shared_path: a directory the environment already shares between the mail nodes
    (the lab mounts one host directory at /srv/shared on mx1 and mx2). Made sure to exist,
    then bind-mounted (or symlinked, method: symlink) at mount_point. #}
{%- from "common/map.jinja" import mapdata as storage with context %}
{%- set sp = storage.shared_path %}

storage-shared-path-source-file-directory:
  file.directory:
    - name: {{ sp.source }}
    - makedirs: true
{%- if sp.method == "symlink" %}

storage-shared-path-mount-point-file-symlink:
  file.symlink:
    - name: {{ storage.mount_point }}
    - target: {{ sp.source }}
    - makedirs: true
    - require:
      - file: storage-shared-path-source-file-directory
{%- else %}

storage-shared-path-mount-point-file-directory:
  file.directory:
    - name: {{ storage.mount_point }}
    - makedirs: true

storage-shared-path-mount-point-mount-mounted:
  mount.mounted:
    - name: {{ storage.mount_point }}
    - device: {{ sp.source }}
    - fstype: none
    - opts:
      - bind
    # fstab is written by the state below: mount.mounted's persist rewrote the line with the
    # source filesystem's options on every run (a change each time)
    - persist: false
    - require:
      - file: storage-shared-path-source-file-directory
      - file: storage-shared-path-mount-point-file-directory

# in fstab: a rebooted node gets its store back before the mail services start
storage-shared-path-mount-point-mount-fstab_present:
  mount.fstab_present:
    - name: {{ sp.source }}
    - fs_file: {{ storage.mount_point }}
    - fs_vfstype: none
    - fs_mntops: bind
    - match_on: name
    - mount: false
    - require:
      - mount: storage-shared-path-mount-point-mount-mounted
{%- endif %}
